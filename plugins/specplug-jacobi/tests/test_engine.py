"""Jacobi in the reference engine: greedy output identical to plain decoding."""

import pytest

from specplug.testing import assert_greedy_lossless, tiny_llama
from specplug_jacobi.proposer import JacobiOptions, JacobiProposer

PROMPTS = [[5, 17, 3, 99, 42, 7], [1, 2, 3, 4, 5, 6, 7, 8], [64, 64, 12, 90]]


@pytest.mark.parametrize("init", ["repeat_last", "pad"])
def test_greedy_identical_tiny_llama(init):
    model = tiny_llama(vocab_size=128, seed=5)
    out = assert_greedy_lossless(lambda: JacobiProposer(JacobiOptions(window=5, init=init)), model, PROMPTS, k=5, max_new_tokens=32)
    assert all(r.stats.drafted > 0 for r in out["greedy_match"])


@pytest.mark.slow
def test_smollm2_greedy_identical():
    from specplug.models import load_model

    model, tok = load_model("smollm2-135m")
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in ("List the numbers from 1 to 20.", "What is the capital of France?")]
    prompts = [p if isinstance(p, list) else p["input_ids"] for p in prompts]
    assert_greedy_lossless(lambda: JacobiProposer(JacobiOptions(window=6)), model, prompts, k=6,
                           max_new_tokens=24, verifiers=("greedy_match",), tokenizer=tok)
