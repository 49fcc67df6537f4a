"""kangaroo (Whisper): the target's first layers plus a trained exit adapter draft losslessly; the
adapter's cache follows the draft's; training beats the untrained exit (plain early exit) on held-out
agreement; the draft early exit verifies fewer rows; exact sampling; bad input refused with the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.engine import ReferenceEngine
from specplug.kit.drafting import ReducedVocab
from specplug.kit.seq2seq import Seq2SeqTarget, transcribe
from specplug.kit.whisper_draft import DraftDecoderError, build_draft_decoder, save_draft_decoder
from specplug.protocols import SamplingParams, TargetInfo
from specplug.testing.speech import tiny_whisper
from specplug_speech.distill import pseudo_label
from specplug_speech.early_exit import EarlyExitDraftCache, build_early_exit_draft, load_early_exit_draft, save_early_exit_draft
from specplug_speech.exit_training import exit_features, train_exit
from specplug_speech.kangaroo import KangarooOptions, KangarooProposer


def _tones(seconds: float, freqs, noise: float = 0.05, seed: int = 0):
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(seed)
    return [(0.5 * np.sin(2 * np.pi * f * t) + noise * rng.standard_normal(t.size)).astype(np.float32) for f in freqs]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    model, prompt, extractor = tiny_whisper(seed=1)
    model.requires_grad_(False)
    vocab = ReducedVocab(np.arange(model.config.vocab_size), model.config.vocab_size)
    draft = build_early_exit_draft(model, 1, vocab)
    with torch.no_grad():  # an adapter that changes the exit (as a trained one does)
        draft.specplug_adapter.out.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(0))
    folder = save_early_exit_draft(draft, model, tmp_path_factory.mktemp("exit"))
    return model, prompt, extractor, _tones(2, (220, 1000, 3000, 500)), folder


def test_draft_is_the_targets_first_layers_with_the_adapter(tiny):
    model, _, _, _, folder = tiny
    draft = load_early_exit_draft(folder, model)
    assert draft.model.encoder is model.model.encoder
    assert list(draft.model.decoder.layers) == list(model.model.decoder.layers[:1])  # the same modules, not copies
    assert draft.model.decoder.layer_norm is draft.specplug_adapter


@pytest.mark.parametrize("verifier", ["greedy_match", "speculative_sampling", "tree_verification"])
def test_greedy_transcripts_identical_to_plain(tiny, verifier):
    model, prompt, extractor, audios, folder = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    plain = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=16)
    proposer = KangarooProposer(KangarooOptions(draft=str(folder), stop_below=0.0))
    got = transcribe(engine, extractor, audios, proposer, verifier, k=4, max_new_tokens=16, prompt=prompt)
    assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
    assert sum(g.result.stats.accepted for g in got) > 0


def test_adapter_cache_follows_rollbacks(tiny):
    """Drafting incrementally, rolled back and fed again, gives the logits of one whole-sequence pass."""
    model, prompt, extractor, audios, folder = tiny
    draft = load_early_exit_draft(folder, model)
    target = Seq2SeqTarget(model)
    target.encode(extractor(audios[0], sampling_rate=16000, return_tensors="pt").input_features)
    sequence = prompt + [5, 9, 17, 30, 41, 8]
    cache = EarlyExitDraftCache(draft)
    first = cache.sync(sequence[:4])
    cache.feed([60, 61, 62])  # a draft the target rejects
    middle = cache.sync(sequence[:6])
    last = cache.sync(sequence)
    with torch.no_grad():
        states = model.model.decoder(input_ids=torch.tensor([sequence]), encoder_hidden_states=target.encoder_states(),
                                     output_hidden_states=True).hidden_states[1]
        whole = draft.specplug_adapter.forward_sequence(states)[0] @ draft.proj_out.weight.T
    for got, position in ((first, 3), (middle, 5), (last, len(sequence) - 1)):
        torch.testing.assert_close(got, whole[position], rtol=1e-4, atol=1e-4)


def test_training_beats_the_untrained_exit_on_held_out_agreement(tiny):
    """The untrained adapter is plain early exit (layer 1's state, final norm, tied head); training must beat it."""
    model, prompt, extractor, _, _ = tiny
    audios = _tones(1, np.linspace(150, 4000, 20), seed=3)
    data = pseudo_label(model, extractor, audios, prompt, 3, max_new_tokens=10, log=lambda m: None)
    vocab = ReducedVocab(np.arange(model.config.vocab_size), model.config.vocab_size)
    draft = build_early_exit_draft(model, 1, vocab)
    adapter = draft.specplug_adapter
    features = exit_features(model, data, 1, torch.as_tensor(vocab.token_ids))
    with torch.no_grad():  # untrained: exactly the target's final norm and head on layer 1's state
        plain_exit = model.proj_out(model.model.decoder.layer_norm(features.states[0]))
        torch.testing.assert_close(adapter.forward_sequence(features.states[0][None])[0] @ draft.proj_out.weight.T, plain_exit)
    figures = train_exit(adapter, draft.proj_out.weight.detach(), features, steps=150, batch_size=8, lr=3e-3, holdout=0.25, log=lambda m: None)
    assert figures["agreement_after"] > figures["agreement_before"] + 0.1, figures
    assert figures["final_loss"] < figures["first_loss"], figures


def test_draft_early_exit_verifies_fewer_rows(tiny):
    model, prompt, extractor, audios, folder = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    plain = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=16)
    drafted = {}
    for eta in (0.0, 0.5, 1.0):
        got = transcribe(engine, extractor, audios, KangarooProposer(KangarooOptions(draft=str(folder), stop_below=eta)),
                         k=4, max_new_tokens=16, prompt=prompt)
        assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
        drafted[eta] = sum(g.result.stats.drafted for g in got)
    assert drafted[0.0] > drafted[0.5] > drafted[1.0] == 0, drafted


def test_speculative_sampling_is_exact(tiny):
    """The first token's distribution at temperature 2 equals the target's; the draft's own does not."""
    model, prompt, extractor, audios, folder = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    engine.target.encode(extractor(audios[1], sampling_rate=16000, return_tensors="pt").input_features)
    n = 600
    proposer = KangarooProposer(KangarooOptions(draft=str(folder), stop_below=0.0, seed=5))
    results = engine.generate([prompt] * n, proposer, "speculative_sampling", k=2, max_new_tokens=2,
                              sampling=SamplingParams(temperature=2.0), seed=11)
    assert sum(r.stats.drafted for r in results) == n
    counts = np.bincount([r.token_ids[0] for r in results], minlength=model.config.vocab_size)
    with torch.no_grad():
        p = torch.softmax(engine.target.forward(prompt)[-1] / 2.0, -1).double().numpy()
        engine.target.reset()
        cache = EarlyExitDraftCache(load_early_exit_draft(folder, model))
        q = torch.softmax(cache.sync(prompt) / 2.0, -1).double().numpy()

    def pvalue(expected):
        keep = expected * n >= 5
        f_exp = np.append(expected[keep] * n, expected[~keep].sum() * n)
        f_obs = np.append(counts[keep], counts[~keep].sum())
        if f_exp[-1] < 1e-9:
            f_exp, f_obs = f_exp[:-1], f_obs[:-1]
        return float(chisquare(f_obs, f_exp * f_obs.sum() / f_exp.sum()).pvalue)

    assert pvalue(p) > 1e-3
    assert pvalue(q) < 1e-6, "the control (the draft's own distribution) must be rejected"


def test_bad_input_is_refused_with_the_fix(tiny, tmp_path):
    model, _, _, _, folder = tiny
    with pytest.raises(DraftDecoderError, match="speech train-exit"):
        load_early_exit_draft(tmp_path, model)
    distilled = save_draft_decoder(build_draft_decoder(model, [0]), model, tmp_path / "distilled")
    (distilled / "exit.safetensors").write_bytes((folder / "exit.safetensors").read_bytes())
    with pytest.raises(DraftDecoderError, match="not an early exit"):
        load_early_exit_draft(distilled, model)
    other, _, _ = tiny_whisper(seed=2)
    with pytest.raises(DraftDecoderError, match="trained for target"):
        load_early_exit_draft(folder, other)
    for layer in (0, 2):  # the tiny target has 2 decoder layers: an exit after 0 or all of them drafts nothing useful
        with pytest.raises(ValueError, match="exit layer"):
            build_early_exit_draft(model, layer)
    text_model = type("TextModel", (), {"config": type("Config", (), {"is_encoder_decoder": False})()})()
    with pytest.raises(ValueError, match="whisper-tiny.en"):
        KangarooProposer(KangarooOptions()).bind_target(TargetInfo(vocab_size=96, model=text_model))
