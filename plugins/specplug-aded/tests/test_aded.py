"""Tests of specplug-aded: the adaptive table, the tree search, the batch path and the per-request state."""

from __future__ import annotations

import numpy as np
import pytest

from specplug.protocols import ProposalRequest
from specplug_aded import AdedOptions, AdedProposer
from specplug_aded import kernels


def test_table_adapts_as_tokens_commit():
    """A context's continuation changes once the output keeps using another one: the table adapts."""
    proposer = AdedProposer(AdedOptions(simulations=8, max_nodes=1))
    text = [1, 2, 3] * 3  # after (1, 2) comes 3
    assert proposer.propose(ProposalRequest("r", np.array(text + [1, 2]), 3, 1)).token_ids.tolist() == [3]
    text += [1, 2, 8] * 5  # ... until the output says 8 after (1, 2) more often
    assert proposer.propose(ProposalRequest("r", np.array(text + [1, 2]), 3, 1)).token_ids.tolist() == [8]


def test_bigram_fallback_for_an_unseen_tri_gram_context():
    proposer = AdedProposer()
    draft = proposer.propose(ProposalRequest("r", np.array([4, 5, 6, 9, 5]), 2, 1))  # (9, 5) unseen; 5 -> 6
    assert draft.token_ids.tolist() == [6]


def test_search_explores_beyond_the_greedy_chain():
    """With exploration the tree holds the rarer continuation too; without (c_puct 0) only the greedy chain."""
    tokens = np.array([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 7, 7, 1, 2], dtype=np.int64)
    explore = AdedProposer(AdedOptions(simulations=64, max_nodes=12, c_puct=4.0)).propose(ProposalRequest("r", tokens, 2, 4))
    assert explore.is_tree and {3, 7} <= set(explore.token_ids[explore.parents == -1].tolist())
    assert explore.token_ids[:2].tolist() == [3, 4]  # the most visited path comes first
    greedy = AdedProposer(AdedOptions(simulations=64, max_nodes=12, c_puct=0.0)).propose(ProposalRequest("r", tokens, 2, 4))
    assert set(greedy.token_ids[greedy.parents == -1].tolist()) == {3}


def test_tree_is_closed_under_parents_and_bounded():
    rng = np.random.default_rng(0)
    proposer = AdedProposer(AdedOptions(max_nodes=10, simulations=40))
    for n in range(10, 300, 13):
        tokens = rng.integers(0, 6, size=n)
        draft = proposer.propose(ProposalRequest("r", tokens, 5, 5))
        assert len(draft) <= 10
        assert draft.depths().max(initial=0) <= 5


def test_table_memory_is_fixed():
    proposer = AdedProposer(AdedOptions(table_buckets=64))
    before = proposer.keys.nbytes + proposer.nexts.nbytes + proposer.counts.nbytes
    rng = np.random.default_rng(1)
    for i in range(20):
        proposer.propose(ProposalRequest(f"r{i}", rng.integers(0, 10_000, size=200), 5, 4))
        proposer.finish_request(f"r{i}")
    assert proposer.keys.nbytes + proposer.nexts.nbytes + proposer.counts.nbytes == before
    assert not proposer.requests


def test_corpus_seeds_the_table(tmp_path):
    np.save(tmp_path / "c.npy", np.array([10, 11, 12, 13, -1, 10, 11, 12], dtype=np.int32))
    proposer = AdedProposer(AdedOptions(corpus=str(tmp_path / "c.npy"), max_nodes=3))
    assert proposer.propose(ProposalRequest("r", np.array([10, 11]), 2, 3)).token_ids.tolist() == [12, 13]


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.npy"), "does not exist"),
    (lambda p: (np.save(p / "e.npy", np.zeros(0, np.int32)), str(p / "e.npy"))[1], "empty"),
])
def test_bad_corpus_is_refused_naming_the_problem(tmp_path, make, message):
    from specplug.registry import get_registry

    with pytest.raises(Exception, match=message):
        get_registry().method("aded").build({"corpus": make(tmp_path)})


def test_batch_entry_point_matches_propose_with_reused_rows():
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    sequences = [np.concatenate([base, rng.integers(0, 30, size=int(n)), base[:20]]).tolist() for n in rng.integers(5, 60, size=9)]
    checked = assert_batch_matches_propose(lambda: AdedProposer(AdedOptions(max_nodes=12)), sequences, [30] * len(sequences), rows=4, k=5)
    assert checked > 50
