"""Lookahead on a tiny Llama: the one-forward mask against brute force, and greedy equality."""

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.testing import assert_greedy_lossless, tiny_llama
from specplug_lookahead.decoder import LookaheadDecoder, forward_layout
from specplug_lookahead.layout import build_layout
from specplug_lookahead.proposer import LookaheadOptions, LookaheadPoolProposer

PROMPTS = [[5, 17, 3, 99, 42, 7, 5, 17], [1, 2, 3, 4, 5, 6, 7, 8], [64, 64, 12, 90]]


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=128, seed=11)


def plain_last_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize("width,ngram", [(4, 3), (3, 4), (5, 2)])
def test_one_forward_mask_matches_brute_force(model, width, ngram):
    engine = ReferenceEngine(model)
    target = engine.target
    rng = np.random.default_rng(width * 10 + ngram)
    context = [3, 14, 15, 92, 65, 35]
    window = rng.integers(0, 128, size=(ngram - 1, width))
    candidates = [tuple(rng.integers(0, 128, ngram - 1)) for _ in range(3)] + [(7,)]
    for cached in (0, 4):  # first step (whole context pending) and a later step (context cached)
        target.reset()
        if cached:
            target.forward(context[:cached])
        root = context[-1]
        layout = build_layout(root, candidates, window)
        logits = forward_layout(target, context[cached:-1], layout)  # [T, V]
        for row in range(len(layout.tokens)):
            cols = np.flatnonzero(layout.allow[row])
            seen = layout.tokens[cols[np.argsort(layout.positions[cols])]].tolist()
            expected = plain_last_logits(model, context[:-1] + seen)
            torch.testing.assert_close(logits[row], expected, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("opts", [
    dict(window=4, ngram=3, guesses=3),
    dict(window=3, ngram=4, guesses=2, pool_from_context=False),
    dict(window=5, ngram=2, guesses=4),
    dict(window=0, ngram=3, guesses=3),
])
def test_decoder_greedy_identical_to_plain(model, opts):
    engine = ReferenceEngine(model)
    plain = engine.generate(PROMPTS, max_new_tokens=40)
    out = LookaheadDecoder(engine, LookaheadOptions(**opts)).generate(PROMPTS, max_new_tokens=40)
    for a, b in zip(plain, out):
        assert a.token_ids == b.token_ids
        assert b.stats.new_tokens == 40 and b.stats.steps <= 40


def test_decoder_finds_a_cycle_through_the_window(model):
    # a prompt that pushes the random model into a loop: lookahead n-grams should get accepted
    engine = ReferenceEngine(model)
    out = LookaheadDecoder(engine, LookaheadOptions(window=5, ngram=3, guesses=4, pool_from_context=False)).generate(
        [[64, 64, 12, 90]], max_new_tokens=64
    )
    plain = engine.generate([[64, 64, 12, 90]], max_new_tokens=64)
    assert out[0].token_ids == plain[0].token_ids
    assert out[0].stats.accepted > 0  # n-grams from the Jacobi window alone (no context pool) were verified


def test_pool_proposer_greedy_identical(model):
    assert_greedy_lossless(lambda: LookaheadPoolProposer(LookaheadOptions(ngram=3, guesses=3)), model, PROMPTS, k=6, max_new_tokens=32)


@pytest.mark.slow
def test_smollm2_decoder_greedy_identical():
    from specplug.models import load_model

    model, tok = load_model("smollm2-135m")
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in ("List the numbers from 1 to 20.", "Write a haiku about bread.")]
    prompts = [p if isinstance(p, list) else p["input_ids"] for p in prompts]
    engine = ReferenceEngine(model, tok)
    plain = engine.generate(prompts, max_new_tokens=32)
    out = LookaheadDecoder(engine, LookaheadOptions()).generate(prompts, max_new_tokens=32)
    assert [r.token_ids for r in out] == [r.token_ids for r in plain]
