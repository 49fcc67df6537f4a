"""sps: sampled output distributed as the target's, the tokenizer check, options and per-request state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.engine import ReferenceEngine
from specplug.methods import OptionsError
from specplug.protocols import Draft, ProposalRequest, SamplingParams
from specplug.registry import get_registry
from specplug.testing import tiny_llama
from specplug.verify.sampling import process_logits
from specplug_draft.proposer import DraftModelError, DraftProposer, tokenizer_fingerprint

VOCAB = 6
PROMPT = [1, 4, 2, 5]
DRAWS = 2000


def build(options):
    return get_registry().method("sps").build(options)


def _target():
    return tiny_llama(vocab_size=VOCAB, seed=11, num_layers=3, init_std=0.35)


def _expected_joint(model, sampling: SamplingParams) -> np.ndarray:
    """The target's own distribution of the first two sampled tokens after PROMPT ([V * V])."""
    with torch.inference_mode():
        p0 = process_logits(model(input_ids=torch.tensor([PROMPT])).logits[0, -1:].float(), sampling)[0]
        rows = model(input_ids=torch.tensor([PROMPT + [t] for t in range(VOCAB)])).logits[:, -1].float()
        p1 = process_logits(rows, sampling)  # [V, V]: row = first token
    return (p0[:, None] * p1).reshape(-1).numpy().astype(np.float64)


def _sampled_joint(model, proposer, sampling: SamplingParams, draws: int) -> np.ndarray:
    """Counts of the first two tokens over ``draws`` requests (request i samples with seed i).

    Three new tokens per request: the first step drafts two nodes (budget min(k, 3 - 1)), so the two
    counted tokens come from accept-all, accept-one and reject-first steps alike."""
    engine = ReferenceEngine(model, eos_token_id=[])
    results = engine.generate([PROMPT] * draws, proposer, "speculative_sampling", k=2, max_new_tokens=3, sampling=sampling)
    counts = np.zeros(VOCAB * VOCAB)
    for r in results:
        counts[r.token_ids[0] * VOCAB + r.token_ids[1]] += 1
    drafted = sum(r.stats.drafted for r in results)
    accepted = sum(r.stats.accepted for r in results)
    assert drafted > 0 and 0 < accepted < drafted, "the draft must be accepted sometimes and rejected sometimes"
    return counts


def _pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 1e-12
    assert counts[~keep].sum() == 0, "emitted a pair the target gives probability 0"
    f_exp = expected[keep] / expected[keep].sum() * counts.sum()
    return float(chisquare(counts[keep], f_exp).pvalue)


def test_sampled_output_is_distributed_as_the_target():
    model = _target()
    sampling = SamplingParams(temperature=1.0)
    counts = _sampled_joint(model, build({"layers": "0"}), sampling, draws=DRAWS)
    assert _pvalue(counts, _expected_joint(model, sampling)) > 1e-3


def test_a_reduced_draft_vocabulary_keeps_the_distribution(tmp_path):
    """The draft (layers 0 and 2) scores 3 of 6 ids, so q is zero where the target is not; top-k 4."""
    (tmp_path / "vocab.json").write_text(json.dumps([2, 0, 5, 1, 3, 4]))
    model = _target()
    sampling = SamplingParams(temperature=0.7, top_k=4)
    proposer = build({"layers": "0,2", "vocab_size": 3, "vocab_file": str(tmp_path / "vocab.json")})
    counts = _sampled_joint(model, proposer, sampling, draws=DRAWS)
    assert _pvalue(counts, _expected_joint(model, sampling)) > 1e-3


class _WrongQ(DraftProposer):
    """Samples from the draft but reports a uniform q: speculative sampling is then biased."""

    def propose(self, request):
        draft = super().propose(request)
        if draft.probs is None:
            return draft
        return Draft.chain(draft.token_ids, probs=torch.full_like(draft.probs, 1.0 / VOCAB))


def test_the_same_check_catches_a_wrong_q():
    model = _target()
    sampling = SamplingParams(temperature=1.0)
    spec = get_registry().method("sps")
    counts = _sampled_joint(model, _WrongQ(spec.validate_options({"layers": "0"})), sampling, draws=1500)
    assert _pvalue(counts, _expected_joint(model, sampling)) < 1e-6


# -- the tokenizer check -------------------------------------------------------------------------


def _word_tokenizer(path, words):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.save_pretrained(str(path))
    return fast


def _model_folder(path, vocab_size, words):
    model = tiny_llama(vocab_size=vocab_size, seed=2)
    model.save_pretrained(str(path))
    return model, _word_tokenizer(path, words)


def test_a_draft_with_another_tokenizer_is_refused_naming_both(tmp_path):
    words = [f"w{i}" for i in range(30)]
    target, target_tok = _model_folder(tmp_path / "target", 32, words)
    _model_folder(tmp_path / "same", 32, words)
    _model_folder(tmp_path / "other", 32, words[::-1])  # same size, other ids
    _model_folder(tmp_path / "bigger", 40, words + [f"x{i}" for i in range(8)])
    engine = ReferenceEngine(target, target_tok)
    ok = build({"model": str(tmp_path / "same")})
    engine.generate([[2, 3, 4]], ok, k=3, max_new_tokens=4)  # same tokenizer: runs
    assert ok.info["draft_tokenizer"] == ok.info["target_tokenizer"] == tokenizer_fingerprint(target_tok)
    for name, size in (("other", 32), ("bigger", 40)):
        with pytest.raises(DraftModelError) as err:
            engine.generate([[2, 3, 4]], build({"model": str(tmp_path / name)}), k=3, max_new_tokens=4)
        message = str(err.value)
        assert f"vocabulary {size}" in message and "vocabulary 32" in message
        assert str(tmp_path / name) in message and tokenizer_fingerprint(target_tok)[:19] in message
        assert "specplug models derive" in message


# -- options and lifecycle -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options,words",
    [
        ({}, "exactly one of 'model'"),
        ({"model": "x", "layers": "0"}, "exactly one of 'model'"),
        ({"layers": "0", "dtype": "float16"}, "'dtype' applies"),
        ({"layers": "0", "vocab_file": "v.json"}, "needs 'vocab_size'"),
        ({"layers": "0", "stop_below": 1.5}, "stop_below"),
        ({"layers": "0", "draft_model": "x"}, "Allowed options"),
    ],
)
def test_bad_options_are_clear_errors(options, words):
    with pytest.raises(OptionsError, match=words):
        build(options)


def test_bad_layers_are_refused_when_bound():
    engine = ReferenceEngine(tiny_llama(vocab_size=32, num_layers=2), eos_token_id=[])
    with pytest.raises(ValueError, match="out of range; the model has 2 layers"):
        engine.generate([[1, 2]], build({"layers": "0-2"}), max_new_tokens=3)


def test_vocab_size_without_a_tokenizer_or_file_is_a_clear_error():
    engine = ReferenceEngine(tiny_llama(vocab_size=32), eos_token_id=[])
    with pytest.raises(DraftModelError, match="give 'vocab_file'"):
        engine.generate([[1, 2]], build({"layers": "0", "vocab_size": 8}), max_new_tokens=3)


def test_an_unbound_proposer_says_how_to_run_sps_in_vllm():
    with pytest.raises(DraftModelError, match="specplug vllm-config sps --model"):
        build({"layers": "0"}).start_request("r", np.array([1, 2]))


def test_each_request_has_its_own_draft_cache_dropped_at_finish():
    model = tiny_llama(vocab_size=64, seed=4)
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = build({"layers": "0", "num_draft_tokens": 2})
    proposer.bind_target(engine.target_info())
    proposer.start_request("a", np.array([1, 2, 3]))
    proposer.start_request("b", np.array([4, 5]))
    a = proposer.propose(ProposalRequest("a", np.array([1, 2, 3]), 3, 5))
    b = proposer.propose(ProposalRequest("b", np.array([4, 5]), 2, 5))
    assert len(a) == 2 and len(b) == 2  # num_draft_tokens caps the engine's 5
    assert proposer._caches["a"].tokens == [1, 2, 3] + a.token_ids[:1].tolist()
    proposer.finish_request("a")
    assert set(proposer._caches) == {"b"}
    results = engine.generate([[1, 2, 3], [7, 8]], proposer, k=4, max_new_tokens=10)
    assert all(r.stats.drafted > 0 for r in results)
    assert set(proposer._caches) == {"b"}  # the engine's requests were dropped when they finished


def test_a_confidence_stop_drafts_less():
    model = tiny_llama(vocab_size=64, seed=4)
    engine = ReferenceEngine(model, eos_token_id=[])
    full = engine.generate([[1, 2, 3]], build({"layers": "0"}), k=6, max_new_tokens=24)[0]
    short = engine.generate([[1, 2, 3]], build({"layers": "0", "stop_below": 0.9}), k=6, max_new_tokens=24)[0]
    assert short.token_ids == full.token_ids
    assert short.stats.drafted < full.stats.drafted


def test_vllm_config_prints_the_native_draft_model_config(tmp_path):
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["vllm-config", "sps", "--model", str(tmp_path), "--k", "5"])
    assert result.exit_code == 0, result.output
    expected = json.dumps({"method": "draft_model", "num_speculative_tokens": 5, "model": str(tmp_path)})
    assert f"--speculative-config '{expected}'" in result.output
    assert "specplug.vllm.sps" not in result.output  # the custom_class adapter cannot bind a draft model
