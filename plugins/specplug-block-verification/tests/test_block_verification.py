"""Block verification: exact expectations (never worse than token-wise: the paper's Theorem 2),
the target distribution kept (chi-square, with a wrong-residual control the check must reject),
greedy output identical to plain decoding in the reference engine, and clear errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

import specplug_block_verification.verifier as block_module
from specplug.protocols import Draft, SamplingParams
from specplug.testing import NoisyOracleProposer, assert_greedy_lossless, examples, greedy_reference, tiny_llama, total_accepted
from specplug.verify import SpeculativeSamplingVerifier
from specplug_block_verification.verifier import (
    BlockVerifier,
    block_expected_accepted,
    tokenwise_expected_accepted,
)

# -- Theorem 2: never fewer accepted tokens in expectation than token-wise -------------------------


def _random_models(rng: np.random.Generator, vocab: int, concentration: float):
    """Target and draft distributions for every prefix (a dict keyed by the drafted tokens so far)."""
    cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def at(prefix: tuple) -> tuple[np.ndarray, np.ndarray]:
        if prefix not in cache:
            cache[prefix] = (rng.dirichlet(np.full(vocab, concentration)), rng.dirichlet(np.full(vocab, concentration)))
        return cache[prefix]

    return at


def _expected_both(at, vocab: int, gamma: int) -> tuple[float, float]:
    """E[accepted] for token-wise and block verification, exactly: every draft weighted by its q-probability."""
    tokenwise = block = 0.0
    for draft in itertools.product(range(vocab), repeat=gamma):
        rows = [at(draft[:i]) for i in range(gamma + 1)]
        p = np.stack([r[0] for r in rows])  # [gamma + 1, V]
        q = np.stack([r[1] for r in rows[:gamma]])  # [gamma, V]
        weight = float(np.prod([q[i, x] for i, x in enumerate(draft)]))
        tokenwise += weight * tokenwise_expected_accepted(p, q, list(draft))
        block += weight * block_expected_accepted(p, q, list(draft))
    return tokenwise, block


@settings(max_examples=examples(200), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), vocab=st.integers(2, 4), gamma=st.integers(1, 4),
       concentration=st.sampled_from([0.2, 1.0, 5.0]))
def test_block_never_accepts_fewer_tokens_in_expectation_than_tokenwise(seed, vocab, gamma, concentration):
    at = _random_models(np.random.default_rng(seed), vocab, concentration)
    tokenwise, block = _expected_both(at, vocab, gamma)
    assert block >= tokenwise - 1e-9, (tokenwise, block)
    if gamma == 1:  # one token: the two rules are the same rule
        assert block == pytest.approx(tokenwise, abs=1e-12)


def test_block_accepts_strictly_more_on_the_papers_example():
    """The paper's Section 3 example: q = (1/3, 2/3), p = (2/3, 1/3), i.i.d. per position, two drafts.
    Token-wise: 2/3 + (2/3)^2 = 10/9 tokens; block verification keeps blocks such as 'BA' whole, whose
    joint ratio is 1, even when 'B' alone would have been rejected."""
    p_row, q_row = np.array([2 / 3, 1 / 3]), np.array([1 / 3, 2 / 3])
    tokenwise, block = _expected_both(lambda prefix: (p_row, q_row), vocab=2, gamma=2)
    assert tokenwise == pytest.approx(10 / 9, abs=1e-12)
    assert block > tokenwise + 0.05, (tokenwise, block)


# -- Theorem 1: the output is distributed as the target's (chi-square) ----------------------------

VOCAB = 4
GAMMA = 3
DRAWS = 6_000


def _markov(seed: int = 3):
    """Target logits and draft distributions that depend on the previous token (row = previous token)."""
    rng = np.random.default_rng(seed)
    logits0 = torch.tensor(rng.normal(scale=1.5, size=VOCAB), dtype=torch.float32)
    logits = torch.tensor(rng.normal(scale=1.5, size=(VOCAB, VOCAB)), dtype=torch.float32)
    q0 = rng.dirichlet(np.ones(VOCAB))
    q = rng.dirichlet(np.ones(VOCAB), size=VOCAB)
    return logits0, logits, q0, q


def _three_token_joint(verifier, sampling: SamplingParams, with_probs: bool, seed: int = 0):
    """Observed counts and expected frequencies of the first three emitted tokens (V^3 cells)."""
    from specplug.verify import process_logits

    logits0, logits, q0, q = _markov()
    p0 = process_logits(logits0[None], sampling)[0].double().numpy()
    p = process_logits(logits, sampling).double().numpy()
    expected = (p0[:, None, None] * p[:, :, None] * p[None, :, :]).reshape(-1)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(VOCAB**3)
    for _ in range(DRAWS):
        tokens, rows = [], [q0]
        for _ in range(GAMMA):
            tokens.append(int(rng.choice(VOCAB, p=rows[-1])))
            rows.append(q[tokens[-1]])
        draft = Draft.chain(tokens, probs=np.stack(rows[:GAMMA]) if with_probs else None)
        if not with_probs:  # a deterministic guess: fixed tokens, no q
            draft = Draft.chain([1, 2, 0])
        logit_rows = torch.stack([logits0] + [logits[t] for t in draft.token_ids.tolist()])
        out = verifier.verify(logit_rows, draft, sampling, gen).tokens
        while len(out) < 3:  # continue like plain decoding
            out = out + verifier.verify(logits[out[-1]][None], Draft.empty(), sampling, gen).tokens
        counts[(out[0] * VOCAB + out[1]) * VOCAB + out[2]] += 1
    return counts, expected


def _pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 0
    assert counts[~keep].sum() == 0, "emitted a sequence the target gives probability 0"
    f_exp = expected[keep] / expected[keep].sum() * counts.sum()
    return float(chisquare(counts[keep], f_exp).pvalue)


@pytest.mark.parametrize("sampling,with_probs", [(SamplingParams(temperature=1.0), True),
                                                  (SamplingParams(temperature=0.8, top_p=0.9), False)])
def test_block_verification_keeps_the_target_distribution(sampling, with_probs):
    counts, expected = _three_token_joint(BlockVerifier(), sampling, with_probs)
    assert _pvalue(counts, expected) > 1e-3


def test_a_wrong_residual_fails_the_same_check(monkeypatch):
    """Resampling after a partial block from the target row P_tau instead of the block residual
    norm(max(0, w_tau P_tau - Q_tau)) biases the output; the check above must catch it."""
    monkeypatch.setattr(block_module, "block_residual", lambda p_row, q_row, weight: p_row)
    counts, expected = _three_token_joint(BlockVerifier(), SamplingParams(temperature=1.0), True)
    assert _pvalue(counts, expected) < 1e-6


def test_block_accepts_more_than_tokenwise_on_the_same_drafts():
    """Measured, not only computed: over the same sampled drafts, block verification keeps more tokens."""
    logits0, logits, q0, q = _markov()
    rng = np.random.default_rng(1)
    kept = {"block": 0, "tokenwise": 0}
    verifiers = {"block": BlockVerifier(), "tokenwise": SpeculativeSamplingVerifier()}
    gens = {name: torch.Generator().manual_seed(5) for name in verifiers}
    for _ in range(3000):
        tokens, rows = [], [q0]
        for _ in range(GAMMA):
            tokens.append(int(rng.choice(VOCAB, p=rows[-1])))
            rows.append(q[tokens[-1]])
        draft = Draft.chain(tokens, probs=np.stack(rows[:GAMMA]))
        logit_rows = torch.stack([logits0] + [logits[t] for t in tokens])
        for name, verifier in verifiers.items():
            kept[name] += len(verifier.verify(logit_rows, draft, SamplingParams(temperature=1.0), gens[name]).accepted_nodes)
    assert kept["block"] >= kept["tokenwise"], kept


# -- greedy, padding, bad input -------------------------------------------------------------------


def test_greedy_output_equals_plain_decoding_in_the_reference_engine():
    model = tiny_llama(vocab_size=64, seed=1)
    prompts = [[1, 2, 3, 4, 5]]
    refs = greedy_reference(model, prompts, max_new_tokens=16)
    results = assert_greedy_lossless(lambda: NoisyOracleProposer(refs, vocab_size=64, corrupt=0.3, seed=2), model,
                                     prompts, k=4, max_new_tokens=16, verifiers=("block_verification",))
    assert total_accepted(results) > 5


def test_greedy_with_sampled_draft_probabilities_is_greedy_match():
    rng = np.random.default_rng(0)
    for _ in range(200):
        logits = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
        q = rng.dirichlet(np.ones(6), size=3)
        tokens = [int(rng.choice(6, p=row)) for row in q]
        out = BlockVerifier().verify(logits, Draft.chain(tokens, probs=q), SamplingParams(), torch.Generator().manual_seed(0))
        argmax = logits.argmax(-1).tolist()
        n = next((i for i, t in enumerate(tokens) if t != argmax[i]), 3)
        assert out.accepted_nodes == list(range(n)) and out.tokens == tokens[:n] + [argmax[n]]


def test_padding_ends_the_chain():
    logits = torch.zeros(4, 5)
    logits[:, 2] = 10.0
    out = BlockVerifier().verify(logits, Draft.chain([2, Draft.PADDING, 2]), SamplingParams(), None)
    assert out.accepted_nodes == [0] and out.tokens == [2, 2]


def test_a_tree_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="chain.*tree_verification"):
        BlockVerifier().verify(torch.zeros(3, 5), Draft([1, 2], parents=[-1, -1]), SamplingParams(), None)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="num_nodes"):
        BlockVerifier().verify(torch.zeros(2, 5), Draft.chain([1, 2]), SamplingParams(), None)
