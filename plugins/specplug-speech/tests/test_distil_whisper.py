"""distil_whisper: lossless drafting with a draft decoder sharing the target's encoder, distillation
that raises the draft's agreement, exact speculative sampling, and the speech bench's WER."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.engine import ReferenceEngine
from specplug.kit.drafting import ReducedVocab
from specplug.kit.seq2seq import transcribe
from specplug.kit.whisper_draft import DraftDecoderError, build_draft_decoder, load_draft_decoder, save_draft_decoder
from specplug.protocols import SamplingParams
from specplug.testing.speech import tiny_whisper
from specplug_speech.bench import parse_method, wer
from specplug_speech.distill import _cross_keys_values, _student_logits, distill, pseudo_label
from specplug_speech.proposer import DistilWhisperOptions, DistilWhisperProposer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, prompt, extractor = tiny_whisper(seed=1)
    model.requires_grad_(False)
    t = np.arange(16000 * 2) / 16000
    rng = np.random.default_rng(0)
    audios = [(0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32) for f in (220, 1000, 3000, 500)]
    vocab = ReducedVocab(np.arange(model.config.vocab_size), model.config.vocab_size)
    folder = save_draft_decoder(build_draft_decoder(model, [1], vocab), model, tmp_path_factory.mktemp("draft"))
    return model, prompt, extractor, audios, folder


def test_greedy_transcripts_identical_to_plain(tiny):
    model, prompt, extractor, audios, folder = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    plain = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=16)
    accepted = 0
    for verifier in ("greedy_match", "speculative_sampling", "tree_verification"):
        proposer = DistilWhisperProposer(DistilWhisperOptions(draft=str(folder)))
        got = transcribe(engine, extractor, audios, proposer, verifier, k=4, max_new_tokens=16, prompt=prompt)
        assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
        accepted += sum(g.result.stats.accepted for g in got)
    assert accepted > 0


def test_draft_shares_the_targets_encoder_and_refuses_another_target(tiny, tmp_path):
    model, prompt, extractor, audios, folder = tiny
    draft = load_draft_decoder(folder, model)
    assert draft.model.encoder is model.model.encoder
    assert draft.model.decoder.embed_tokens is model.model.decoder.embed_tokens
    other, _, _ = tiny_whisper(seed=2)
    with pytest.raises(DraftDecoderError, match="distilled for target"):
        load_draft_decoder(folder, other)
    with pytest.raises(DraftDecoderError, match="speech distill"):
        load_draft_decoder(tmp_path, model)


def test_precomputed_cross_attention_equals_the_plain_forward(tiny):
    model, prompt, extractor, audios, _ = tiny
    data = pseudo_label(model, extractor, audios[:2], prompt, 3, max_new_tokens=6, log=lambda m: None)
    draft = build_draft_decoder(model, [0, 1], ReducedVocab(np.arange(40), model.config.vocab_size))
    inputs = torch.tensor([prompt + data.transcripts[0][:-1]])
    fast = _student_logits(draft, inputs, [_cross_keys_values(draft, data.encoder[0])])
    with torch.no_grad():
        hidden = draft.model.decoder(input_ids=inputs, encoder_hidden_states=data.encoder[0][None].float()).last_hidden_state
    torch.testing.assert_close(fast.detach(), draft.proj_out(hidden), rtol=1e-3, atol=1e-3)


def test_distillation_raises_agreement(tiny, tmp_path):
    model, prompt, extractor, _, _ = tiny
    t = np.arange(16000) / 16000
    audios = [(0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in np.linspace(150, 4000, 12)]
    figures = distill(model, None, extractor, audios, [], prompt, 3, [1], 96, 60, tmp_path / "d", batch_size=4, lr=3e-3,
                      max_new_tokens=8, log=lambda m: None)
    assert figures["final_loss"] < 0.5 * figures["first_loss"], figures
    assert figures["agreement_after"] >= figures["agreement_before"], figures
    assert (tmp_path / "d" / "draft.json").exists()


def test_speculative_sampling_is_exact(tiny):
    """The first token's distribution at temperature 2 equals the target's; the draft's own does not."""
    model, prompt, extractor, audios, folder = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    engine.target.encode(extractor(audios[0], sampling_rate=16000, return_tensors="pt").input_features)
    sampling = SamplingParams(temperature=2.0)
    n = 600
    proposer = DistilWhisperProposer(DistilWhisperOptions(draft=str(folder), seed=5))
    results = engine.generate([prompt] * n, proposer, "speculative_sampling", k=2, max_new_tokens=2, sampling=sampling, seed=11)
    assert sum(r.stats.drafted for r in results) == n
    counts = np.bincount([r.token_ids[0] for r in results], minlength=model.config.vocab_size)
    with torch.no_grad():
        p = torch.softmax(engine.target.forward(prompt)[-1] / 2.0, -1).double().numpy()
        engine.target.reset()
        draft = load_draft_decoder(folder, model)
        from specplug.kit.seq2seq import Seq2SeqTarget

        q = torch.softmax(Seq2SeqTarget(draft).forward(prompt)[-1] / 2.0, -1).double().numpy()

    def pvalue(expected):
        keep = expected * n >= 5
        f_exp = np.append(expected[keep] * n, expected[~keep].sum() * n)
        f_obs = np.append(counts[keep], counts[~keep].sum())
        if f_exp[-1] < 1e-9:
            f_exp, f_obs = f_exp[:-1], f_obs[:-1]
        return float(chisquare(f_obs, f_exp * f_obs.sum() / f_exp.sum()).pvalue)

    assert pvalue(p) > 1e-3
    assert pvalue(q) < 1e-6, "the control (the draft's own distribution) must be rejected"


def test_bench_parses_methods_and_scores_wer():
    assert parse_method("specasr:max_branches=0,recycle=false") == ("specasr", {"max_branches": "0", "recycle": "false"})
    with pytest.raises(ValueError, match="key=value"):
        parse_method("specasr:oops")
    assert wer("The cat sat.", "the cat sat") == (0, 3)
    assert wer("the cat sat on the mat", "the bat sat the mat too") == (3, 6)
