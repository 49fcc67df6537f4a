"""Built-in verifiers: exact rules on hand-made logits, and distribution checks by chi-square."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

import specplug.verify.speculative as speculative_module
from specplug.verify.specs import BUILTIN_VERIFIERS, TypicalAcceptanceOptions
from specplug.protocols import Draft, SamplingParams, Verifier
from specplug.registry import get_registry
from specplug.testing import (
    NoisyOracleProposer,
    assert_greedy_lossless,
    examples,
    greedy_reference,
    tiny_llama,
    total_accepted,
)
from specplug.verify import (
    GreedyMatchVerifier,
    SpeculativeSamplingVerifier,
    TreeVerifier,
    TypicalAcceptanceVerifier,
    process_logits,
)

GREEDY = SamplingParams()


def one_hot_logits(rows: list[int], vocab: int = 8) -> torch.Tensor:
    """Logits [len(rows), vocab] whose argmax at row r is rows[r]."""
    logits = torch.zeros(len(rows), vocab)
    for r, t in enumerate(rows):
        logits[r, t] = 5.0
    return logits


# -- exact rules ----------------------------------------------------------------------------------


def test_every_builtin_is_a_verifier_with_the_right_lossless_flag():
    expected = {"greedy_match": True, "speculative_sampling": True, "tree_verification": True, "typical_acceptance": False}
    for vid, spec in BUILTIN_VERIFIERS.items():
        v = spec.build()
        assert isinstance(v, Verifier)
        assert v.lossless is expected[vid]


def test_greedy_chain_accepts_matching_prefix_and_adds_target_bonus():
    # target argmax: after root 3, after node0 4, after node1 5, after node2 6
    logits = one_hot_logits([3, 4, 5, 6])
    result = GreedyMatchVerifier().verify(logits, Draft.chain([3, 4, 7]), GREEDY)
    assert result.accepted_nodes == [0, 1]
    assert result.tokens == [3, 4, 5]  # node2 (7) rejected, bonus = argmax after node1


def test_greedy_all_accepted_bonus_after_last_node_and_empty_draft():
    logits = one_hot_logits([3, 4, 6])
    assert GreedyMatchVerifier().verify(logits, Draft.chain([3, 4]), GREEDY).tokens == [3, 4, 6]
    assert GreedyMatchVerifier().verify(logits[:1], Draft.empty(), GREEDY).tokens == [3]


def test_greedy_tree_follows_the_matching_branch():
    # root -> a(1) -> b(2) ; root -> c(3) -> d(4) ; target wants 3 then 4 then 7
    draft = Draft([1, 2, 3, 4], parents=[-1, 0, -1, 2])
    logits = one_hot_logits([3, 0, 0, 4, 7])  # rows: root, after a, after b, after c, after d
    for verifier in (GreedyMatchVerifier(), SpeculativeSamplingVerifier(), TreeVerifier(), TypicalAcceptanceVerifier()):
        result = verifier.verify(logits, draft, GREEDY, torch.Generator().manual_seed(0))
        assert result.accepted_nodes == [2, 3]
        assert result.tokens == [3, 4, 7]


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="num_nodes \\+ 1"):
        GreedyMatchVerifier().verify(torch.zeros(2, 8), Draft.chain([1, 2]), GREEDY)
    with pytest.raises(ValueError, match="draft probs must be"):
        SpeculativeSamplingVerifier().verify(torch.zeros(3, 8), Draft.chain([1, 2], probs=np.ones((1, 8)) / 8), SamplingParams(temperature=1.0))


def test_process_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    p = process_logits(logits, SamplingParams(temperature=1.0))
    assert torch.allclose(p, torch.tensor([[0.5, 0.25, 0.15, 0.1]]), atol=1e-6)
    top2 = process_logits(logits, SamplingParams(temperature=1.0, top_k=2))
    assert torch.allclose(top2, torch.tensor([[2 / 3, 1 / 3, 0.0, 0.0]]), atol=1e-6)
    nucleus = process_logits(logits, SamplingParams(temperature=1.0, top_p=0.7))  # 0.5 + 0.25 >= 0.7
    assert torch.allclose(nucleus, torch.tensor([[2 / 3, 1 / 3, 0.0, 0.0]]), atol=1e-6)
    tiny = process_logits(logits, SamplingParams(temperature=1.0, top_p=0.01))
    assert torch.allclose(tiny, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    greedy = process_logits(logits, GREEDY)
    assert greedy.tolist() == [[1.0, 0.0, 0.0, 0.0]]


@settings(max_examples=examples(60), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 6),
    tree=st.booleans(),
    with_probs=st.booleans(),
)
def test_every_lossless_verifier_is_greedy_at_temperature_zero(seed, n, tree, with_probs):
    """At temperature 0 all rules reduce to exact greedy match, for chains and trees, with or without q."""
    rng = np.random.default_rng(seed)
    vocab = 6
    logits = torch.tensor(rng.normal(size=(n + 1, vocab)), dtype=torch.float32)
    tokens = rng.integers(vocab, size=n)
    parents = [int(rng.integers(-1, i)) for i in range(n)] if tree else None
    probs = rng.dirichlet(np.ones(vocab), size=n) if with_probs and n else None
    draft = Draft(tokens, parents, probs)
    expected = GreedyMatchVerifier().verify(logits, draft, GREEDY)
    for verifier in (SpeculativeSamplingVerifier(), TreeVerifier(), TypicalAcceptanceVerifier()):
        got = verifier.verify(logits, draft, GREEDY, torch.Generator().manual_seed(seed))
        assert (got.accepted_nodes, got.tokens) == (expected.accepted_nodes, expected.tokens)


# -- ids outside the vocabulary (vLLM's padding -1, bad proposers) are never accepted ---------------

SAMPLING_CASES = [GREEDY, SamplingParams(temperature=1.0), SamplingParams(temperature=0.7, top_k=4, top_p=0.9)]


def registered_verifiers(vocab: int):
    """Every verifier the registry knows (built-ins and installed plugins'), with default options.

    A verifier built from the target's token embeddings (lantern: latent neighbours) gets a random
    embedding table of this test's ``vocab`` instead of a model, with one neighbour per token.
    """
    verifiers = {}
    for vid, spec in sorted(get_registry().verifiers.items()):
        if vid == "lantern":
            from specplug_lantern.verifier import LanternOptions, LanternVerifier

            table = np.random.default_rng(vocab).normal(size=(vocab, 4))
            verifiers[vid] = LanternVerifier.from_embeddings(table, LanternOptions(k=1))
        else:
            verifiers[vid] = spec.build()
    return verifiers


@pytest.mark.parametrize("sampling", SAMPLING_CASES[:2], ids=["T=0", "T=1"])
def test_padding_is_not_read_as_the_last_vocabulary_entry(sampling):
    """The reviewer's case: a target that prefers token V-1 and the draft [-1] (vLLM's padding)."""
    vocab = 8
    for vid, verifier in registered_verifiers(vocab).items():
        if not sampling.greedy and getattr(verifier, "greedy_only", False):
            continue  # refuses sampling (test_no_verifier_accepts_an_id_outside_the_vocabulary checks how)
        for draft in (Draft.chain([Draft.PADDING]), Draft([Draft.PADDING, vocab - 1], parents=[-1, 0])):
            logits = torch.zeros(len(draft) + 1, vocab)
            logits[:, vocab - 1] = 20.0  # p(V-1) ~ 1 everywhere
            result = verifier.verify(logits, draft, sampling, torch.Generator().manual_seed(0))
            assert result.accepted_nodes == [], (vid, draft)
            assert result.tokens == [vocab - 1], (vid, draft)


@st.composite
def mixed_drafts(draw):
    """Logits, a draft (chain or tree) whose ids mix valid ids, padding and ids outside [0, V)."""
    vocab = draw(st.integers(2, 7))
    n = draw(st.integers(0, 7))
    ids = draw(st.lists(st.one_of(st.integers(0, vocab - 1), st.just(Draft.PADDING), st.integers(vocab, vocab + 3), st.integers(-5, -2)),
                        min_size=n, max_size=n))
    tree = draw(st.booleans())
    parents = [draw(st.integers(-1, i - 1)) for i in range(n)] if tree else None
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(size=(n + 1, vocab)), dtype=torch.float32)
    if draw(st.booleans()):  # the target prefers V - 1: padding read as p[-1] would be accepted
        logits[:, vocab - 1] += 10.0
    probs = rng.dirichlet(np.ones(vocab), size=n) if draw(st.booleans()) and n else None
    return logits, Draft(ids, parents, probs), seed


@settings(max_examples=examples(150), deadline=None)
@given(case=mixed_drafts(), sampling=st.sampled_from(SAMPLING_CASES))
def test_no_verifier_accepts_an_id_outside_the_vocabulary(case, sampling):
    """For every registered verifier, chains and trees, temperature 0 and above: accepted nodes and
    emitted tokens lie inside the vocabulary and form a path; at temperature 0 the result equals the
    one on the draft with the invalid nodes removed (padding is exactly "no draft here")."""
    logits, draft, seed = case
    vocab = logits.shape[-1]
    valid = draft.in_vocab(vocab)
    parents = draft.parent_array()
    kept = np.flatnonzero(valid)
    pruned = draft.without_invalid(vocab)
    pruned_logits = logits[[0] + [int(n) + 1 for n in kept]]
    for vid, verifier in registered_verifiers(vocab).items():
        refusal = ("greedy" if not sampling.greedy and getattr(verifier, "greedy_only", False) else
                   "tree" if not draft.is_chain and getattr(verifier, "chains_only", False) else None)
        if refusal:  # a greedy-only or chain-only rule refuses what it cannot verify, saying why
            with pytest.raises(ValueError, match=refusal):
                verifier.verify(logits, draft, sampling, torch.Generator().manual_seed(seed))
            continue
        result = verifier.verify(logits, draft, sampling, torch.Generator().manual_seed(seed))
        assert all(valid[n] for n in result.accepted_nodes), (vid, result)
        assert all(0 <= t < vocab for t in result.tokens), (vid, result)
        assert len(result.tokens) == len(result.accepted_nodes) + 1
        path = result.accepted_nodes
        assert [int(parents[n]) for n in path] == ([-1] + path[:-1] if path else []), (vid, result)
        if sampling.greedy:
            clean = verifier.verify(pruned_logits, pruned, sampling, torch.Generator().manual_seed(seed))
            assert [int(kept[n]) for n in clean.accepted_nodes] == result.accepted_nodes, vid
            assert clean.tokens == result.tokens, vid


# -- speculative sampling preserves the target distribution ---------------------------------------

VOCAB = 4
DRAWS = 10_000


def _setup(seed: int = 7):
    """A small-vocabulary two-step 'model': p0 after the root, p1[t] after token t; and a draft model."""
    rng = np.random.default_rng(seed)
    logits0 = torch.tensor(rng.normal(scale=1.5, size=VOCAB), dtype=torch.float32)  # [V]
    logits1 = torch.tensor(rng.normal(scale=1.5, size=(VOCAB, VOCAB)), dtype=torch.float32)  # [V, V]: row = previous token
    q0 = rng.dirichlet(np.ones(VOCAB))  # [V] draft distribution after the root
    q1 = rng.dirichlet(np.ones(VOCAB), size=VOCAB)  # [V, V]
    return logits0, logits1, q0, q1


def _two_token_joint(verifier, sampling: SamplingParams, draft_kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observed counts and expected frequencies of the first two emitted tokens (V*V cells)."""
    logits0, logits1, q0, q1 = _setup()
    p0 = process_logits(logits0[None], sampling)[0].numpy()
    p1 = process_logits(logits1, sampling).numpy()
    expected = (p0[:, None] * p1).reshape(-1)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(VOCAB * VOCAB)
    for _ in range(DRAWS):
        if draft_kind == "chain_probs":  # a 2-token chain sampled from the draft model, with its q
            x0 = int(rng.choice(VOCAB, p=q0))
            x1 = int(rng.choice(VOCAB, p=q1[x0]))
            draft = Draft.chain([x0, x1], probs=np.stack([q0, q1[x0]]))
            rows = torch.stack([logits0, logits1[x0], logits1[x1]])
        elif draft_kind == "chain_deterministic":  # fixed guesses, no probabilities
            draft = Draft.chain([1, 2])
            rows = torch.stack([logits0, logits1[1], logits1[2]])
        elif draft_kind == "tree_probs":  # 3 siblings drawn i.i.d. from q0, each with one child from q1
            xs = [int(rng.choice(VOCAB, p=q0)) for _ in range(3)]
            ys = [int(rng.choice(VOCAB, p=q1[x])) for x in xs]
            tokens = [xs[0], ys[0], xs[1], ys[1], xs[2], ys[2]]
            parents = [-1, 0, -1, 2, -1, 4]
            probs = np.stack([q0, q1[xs[0]], q0, q1[xs[1]], q0, q1[xs[2]]])
            draft = Draft(tokens, parents, probs)
            rows = torch.stack([logits0] + [logits1[t] for t in tokens])
        elif draft_kind == "tree_padded":  # a padding sibling (with a child) before a real one
            draft = Draft([Draft.PADDING, 3, 2, 1], parents=[-1, 0, -1, 2])
            rows = torch.stack([logits0, logits0, logits1[3], logits1[2], logits1[1]])
        elif draft_kind == "tree_deterministic":  # two distinct fixed siblings, each with a child
            draft = Draft([0, 3, 2, 1], parents=[-1, 0, -1, 2])
            rows = torch.stack([logits0] + [logits1[t] for t in [0, 3, 2, 1]])
        else:
            raise AssertionError(draft_kind)
        out = verifier.verify(rows, draft, sampling, gen).tokens
        if len(out) == 1:  # continue like plain decoding: one more step with an empty draft
            out = out + verifier.verify(logits1[out[0]][None], Draft.empty(), sampling, gen).tokens
        counts[out[0] * VOCAB + out[1]] += 1
    return counts, expected


def _chi2_pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    expected = expected.astype(np.float64)
    keep = expected > 0
    assert counts[~keep].sum() == 0, "emitted a token the target gives probability 0"
    f_exp = expected[keep] / expected[keep].sum() * counts.sum()
    f_exp *= counts[keep].sum() / f_exp.sum()  # exact totals for scipy's check
    return float(chisquare(counts[keep], f_exp).pvalue)


@pytest.mark.parametrize(
    "draft_kind,sampling",
    [
        ("chain_probs", SamplingParams(temperature=1.0)),
        ("chain_deterministic", SamplingParams(temperature=0.8)),
        ("tree_probs", SamplingParams(temperature=1.0)),
        ("tree_deterministic", SamplingParams(temperature=1.3, top_k=3)),
        ("chain_probs", SamplingParams(temperature=0.7, top_p=0.8)),
        ("tree_padded", SamplingParams(temperature=1.0)),
    ],
)
def test_speculative_sampling_preserves_the_target_distribution(draft_kind, sampling):
    counts, expected = _two_token_joint(SpeculativeSamplingVerifier(), sampling, draft_kind)
    assert _chi2_pvalue(counts, expected) > 1e-3


def test_a_wrong_residual_fails_the_same_check(monkeypatch):
    """Resampling from p instead of norm(max(0, p - q)) after a rejection biases the output; the
    chi-square check must catch it (otherwise the test above could not fail)."""
    monkeypatch.setattr(speculative_module, "residual", lambda p, q_row, token: p)
    counts, expected = _two_token_joint(SpeculativeSamplingVerifier(), SamplingParams(temperature=1.0), "chain_probs")
    assert _chi2_pvalue(counts, expected) < 1e-6


def test_greedy_match_is_lossless_when_sampling():
    counts, expected = _two_token_joint(GreedyMatchVerifier(), SamplingParams(temperature=1.0), "chain_deterministic")
    assert _chi2_pvalue(counts, expected) > 1e-3


# -- typical acceptance ---------------------------------------------------------------------------


def test_typical_acceptance_threshold_matches_medusa_rule():
    probs = torch.tensor([0.6, 0.3, 0.07, 0.03])
    logits = torch.log(probs)[None].repeat(3, 1)  # same distribution at every row
    entropy = float(-(probs * probs.log()).sum())
    threshold = min(0.09, 0.3 * np.exp(-entropy))
    verifier = TypicalAcceptanceVerifier()
    sampling = SamplingParams(temperature=1.0)
    for token, p in enumerate(probs.tolist()):
        result = verifier.verify(logits[:2], Draft.chain([token]), sampling, torch.Generator().manual_seed(0))
        assert (result.accepted_nodes == [0]) is (p > threshold), (token, p, threshold)
    strict = TypicalAcceptanceVerifier(TypicalAcceptanceOptions(posterior_threshold=0.5, posterior_alpha=1.0))
    assert strict.verify(logits[:2], Draft.chain([1]), sampling, torch.Generator()).accepted_nodes == []


def test_typical_acceptance_picks_the_longest_accepted_tree_path():
    probs = torch.tensor([0.6, 0.3, 0.07, 0.03])
    logits = torch.log(probs)[None].repeat(5, 1)
    # root -> 0 ; root -> 1 -> 0 -> 1 : both branches acceptable, the second is longer
    draft = Draft([0, 1, 0, 1], parents=[-1, -1, 1, 2])
    result = TypicalAcceptanceVerifier().verify(logits, draft, SamplingParams(temperature=1.0), torch.Generator().manual_seed(1))
    assert result.accepted_nodes == [1, 2, 3]
    assert result.tokens[:3] == [1, 0, 1] and len(result.tokens) == 4


# -- the reference engine treats padding as "no draft here" ---------------------------------------


class PaddedOracle(NoisyOracleProposer):
    """The noisy oracle whose drafts sometimes carry vLLM's padding id in place of a token."""

    def _token(self, true_token: int) -> int:
        return Draft.PADDING if self.rng.random() < 0.25 else super()._token(true_token)


@pytest.mark.parametrize("tree", [False, True], ids=["chain", "tree"])
def test_the_reference_engine_drops_padding_and_stays_lossless(tree):
    model = tiny_llama(vocab_size=64, seed=3)
    prompts = [[1, 2, 3, 4, 5], [7, 8, 9]]
    reference = greedy_reference(model, prompts, max_new_tokens=24)
    out = assert_greedy_lossless(lambda: PaddedOracle(reference, 64, corrupt=0.1, tree=tree, seed=2), model, prompts,
                                 k=5, max_new_tokens=24)
    assert total_accepted(out) > 0
