"""Level 2's verifier hook under vLLM's sampling constraints: penalties, bad words, min_tokens and
allowed_token_ids are applied before verifying (outputs equal vLLM without speculation), drafts padded
with -1 are no drafts, and logprobs are refused at the front end with a clear error.

Two engines (one process each): vLLM without speculation, and pld with a specplug verifier.
"""

from __future__ import annotations

import numpy as np
import pytest

from specplug.testing.vllm import run_vllm_job

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

MAX_TOKENS = 20
PLD = {"model": "specplug.vllm.pld", "num_speculative_tokens": 4}


def single_token_words(model: str, n: int, seed: int) -> list[tuple[int, str]]:
    """``n`` (token id, text) pairs whose text encodes back to exactly that one token (for bad_words)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    rng = np.random.default_rng(seed)
    out: list[tuple[int, str]] = []
    for t in rng.permutation(np.arange(1000, 40000)).tolist():
        text = tok.decode([t])
        if text.strip() and tok.encode(text, add_special_tokens=False) == [t] and not text.startswith(" "):
            out.append((t, text))
        if len(out) == n:
            return out
    raise AssertionError("no single-token words found")


def constrained_requests(model: str) -> tuple[list[list[int]], list[dict]]:
    """Repetitive prompts over a small word set (PLD drafts repeats), each with one constraint that
    changes the greedy output, and one with all of them."""
    words = single_token_words(model, 12, seed=0)
    ids = [t for t, _ in words]
    rng = np.random.default_rng(1)
    prompts, sampling = [], []
    allowed = ids[:8]
    cases = [
        {"repetition_penalty": 1.4},
        {"frequency_penalty": 0.8, "presence_penalty": 0.5},
        {"allowed_token_ids": allowed},
        {"allowed_token_ids": allowed, "bad_words": [words[0][1], words[1][1]]},
        {"allowed_token_ids": allowed, "stop_token_ids": [ids[2]], "min_tokens": 12, "ignore_eos": False},
        {"allowed_token_ids": allowed, "bad_words": [words[3][1]], "repetition_penalty": 1.2, "min_tokens": 6,
         "stop_token_ids": [ids[4]], "ignore_eos": False},
        {},  # no constraint, beside the others in the same batch
    ]
    for case in cases:
        phrase = rng.choice(allowed, size=5).tolist()
        prompts.append(phrase * 3 + phrase[:2])
        sampling.append(case)
    return prompts, sampling


def test_level2_verifier_applies_penalties_bad_words_min_tokens_and_allowed_ids(tiny_model, tmp_path, monkeypatch):
    prompts, sampling = constrained_requests(tiny_model)
    job = {"model": tiny_model, "prompts": prompts, "sampling": sampling, "max_tokens": MAX_TOKENS}
    plain = run_vllm_job(tmp_path, job)
    monkeypatch.setenv("SPECPLUG_VLLM_LEVEL2", "1")
    spec = run_vllm_job(tmp_path, {**job, "level2": True, "speculative_config": PLD, "additional_config": {
        "specplug": {"options": {"min_ngram": 1, "max_ngram": 3}, "verifier": "speculative_sampling"}}})
    assert spec["outputs"] == plain["outputs"]
    allowed = set(sampling[2]["allowed_token_ids"])
    assert all(set(out) <= allowed for out in spec["outputs"][2:6])
    assert len(spec["outputs"][4]) >= 12  # min_tokens held the stop token back
    assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
