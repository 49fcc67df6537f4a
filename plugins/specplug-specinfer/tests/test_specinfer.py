"""SpecInfer: the merged token tree, multi-step speculative sampling exact at temperature > 0
(chi-square, with a control that drops repeated draws and must be rejected), greedy output identical
to plain decoding in the reference engine, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.kit.trees import Expansion
from specplug.protocols import Draft, SamplingParams
from specplug.testing import assert_greedy_lossless, tiny_llama, total_accepted
from specplug.verify import SpeculativeSamplingVerifier, process_logits
from specplug_specinfer.options import SpecInferOptions
from specplug_specinfer.proposer import SpecInferProposer
from specplug_specinfer.tree import merge_draws, specinfer_tree

VOCAB = 4


class MarkovDrafter:
    """A top-k drafter whose distribution after a node depends on the node's token (root: ``q0``)."""

    max_k = VOCAB

    def __init__(self, q0: np.ndarray, q: np.ndarray):
        self.q0, self.q = q0, q

    def expand(self, nodes, token_ids, parents, k, with_dists=False):
        rows = np.stack([self.q0 if n < 0 else self.q[int(token_ids[n])] for n in nodes])  # [n, V]
        order = np.argsort(-rows, axis=-1)[:, :k]
        return Expansion(order.astype(np.int64), np.take_along_axis(rows, order, -1), torch.tensor(rows) if with_dists else None)


def _setup(seed: int = 11):
    rng = np.random.default_rng(seed)
    logits0 = torch.tensor(rng.normal(scale=1.5, size=VOCAB), dtype=torch.float32)
    logits = torch.tensor(rng.normal(scale=1.5, size=(VOCAB, VOCAB)), dtype=torch.float32)
    q0 = rng.dirichlet(np.full(VOCAB, 0.7))
    q = rng.dirichlet(np.full(VOCAB, 0.7), size=VOCAB)
    return logits0, logits, MarkovDrafter(q0, q)


def _three_token_joint(keep_repeats: bool, draws: int = 2500, seed: int = 0):
    logits0, logits, drafter = _setup()
    sampling = SamplingParams(temperature=1.0)
    p0 = process_logits(logits0[None], sampling)[0].double().numpy()
    p = process_logits(logits, sampling).double().numpy()
    expected = (p0[:, None, None] * p[:, :, None] * p[None, :, :]).reshape(-1)
    gen = torch.Generator().manual_seed(seed)
    verifier = SpeculativeSamplingVerifier()
    counts = np.zeros(VOCAB**3)
    for _ in range(draws):
        tree = specinfer_tree(drafter, [3, 2, 1], budget=64, greedy=False, generator=gen, keep_repeats=keep_repeats)
        draft = Draft(tree.token_ids, tree.parents, tree.q.numpy())
        rows = torch.stack([logits0] + [logits[int(t)] for t in tree.token_ids])
        out = verifier.verify(rows, draft, sampling, gen).tokens
        while len(out) < 3:
            out = out + verifier.verify(logits[out[-1]][None], Draft.empty(), sampling, gen).tokens
        counts[(out[0] * VOCAB + out[1]) * VOCAB + out[2]] += 1
    return counts, expected


def _pvalue(counts, expected) -> float:
    keep = expected > 0
    assert counts[~keep].sum() == 0
    return float(chisquare(counts[keep], expected[keep] / expected[keep].sum() * counts.sum()).pvalue)


def test_multi_step_speculative_sampling_on_the_merged_tree_keeps_the_target_distribution():
    counts, expected = _three_token_joint(keep_repeats=True)
    assert _pvalue(counts, expected) > 1e-3


def _first_token_counts(keep_repeats: bool, draws: int = 4000, seed: int = 0):
    """The first emitted token over a star of 3 i.i.d. draws from a draft that over-proposes token 0."""
    p0 = np.array([0.05, 0.45, 0.35, 0.15])
    drafter = MarkovDrafter(np.array([0.7, 0.2, 0.05, 0.05]), np.full((VOCAB, VOCAB), 0.25))
    logits0 = torch.tensor(np.log(p0), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(VOCAB)
    for _ in range(draws):
        tree = specinfer_tree(drafter, [3], budget=8, greedy=False, generator=gen, keep_repeats=keep_repeats)
        out = SpeculativeSamplingVerifier().verify(logits0.expand(len(tree) + 1, VOCAB), Draft(tree.token_ids, tree.parents, tree.q.numpy()),
                                                   SamplingParams(temperature=1.0), gen)
        counts[out.tokens[0]] += 1
    return counts, p0


def test_repeats_matter_for_exactness():
    """With repeats kept in draw order the first token is distributed as p; a tree that merges repeats
    away (each token tried once) skips MSS's residual updates for them, and the chi-square check
    rejects it (so the positive checks here could fail)."""
    assert _pvalue(*_first_token_counts(keep_repeats=True)) > 1e-3
    assert _pvalue(*_first_token_counts(keep_repeats=False)) < 1e-6


def test_merged_nodes_carry_every_draws_continuations_and_repeats_stay_in_place():
    q0 = np.array([1.0, 0.0, 0.0, 0.0])  # every draw is token 0
    drafter = MarkovDrafter(q0, np.tile(np.array([0.25, 0.25, 0.25, 0.25]), (VOCAB, 1)))
    tree = specinfer_tree(drafter, [3, 2], budget=64, greedy=False, generator=torch.Generator().manual_seed(0))
    depth1 = [i for i, p in enumerate(tree.parents) if p == -1]
    assert [int(tree.token_ids[i]) for i in depth1] == [0, 0, 0]  # three draws of 0: one node, two repeats
    below = [i for i, p in enumerate(tree.parents) if p == depth1[0]]
    assert len(below) == 3 * 2  # the merged node carries the 3 draws' 2 continuations each
    assert not any(p in depth1[1:] for p in tree.parents)  # repeats are leaves
    assert merge_draws([5, 3, 5, 5]) == ([5, 3, 5, 5], [True, True, False, False], {5: 3, 3: 1})


def test_greedy_candidates_are_the_drafts_top_k_without_q():
    logits0, logits, drafter = _setup()
    tree = specinfer_tree(drafter, [2, 2], budget=64, greedy=True)
    top2 = np.argsort(-drafter.q0)[:2].tolist()
    assert [int(t) for t, p in zip(tree.token_ids, tree.parents) if p == -1] == top2
    assert len(tree) == 2 + 4 and tree.q is None


def test_budget_cuts_keep_a_prefix_of_each_nodes_draws():
    logits0, logits, drafter = _setup()
    full = specinfer_tree(drafter, [3, 2, 1], budget=64, greedy=False, generator=torch.Generator().manual_seed(4))
    cut = specinfer_tree(drafter, [3, 2, 1], budget=5, greedy=False, generator=torch.Generator().manual_seed(4))
    assert len(cut) == 5
    assert cut.token_ids.tolist() == full.token_ids[:5].tolist() and cut.parents.tolist() == full.parents[:5].tolist()


def test_greedy_output_equals_plain_decoding_in_the_reference_engine():
    model = tiny_llama(vocab_size=64, seed=3, num_layers=2)
    options = SpecInferOptions(draft_layers="0", expansion=[2, 2, 1], budget=12)
    results = assert_greedy_lossless(lambda: SpecInferProposer(options), model, [[1, 2, 3, 4, 5, 1, 2, 3]], k=12,
                                     max_new_tokens=16, verifiers=("tree_verification",))
    assert total_accepted(results) > 0


@pytest.mark.parametrize("bad,text", [({"expansion": [2, 0]}, "expansion"), ({"expansion": []}, "expansion"),
                                      ({"budget": 0}, "budget")])
def test_bad_options_are_clear_errors(bad, text):
    from specplug.registry import get_registry

    with pytest.raises(Exception, match=text):
        get_registry().method("specinfer").validate_options({"draft_layers": "0", **bad})
