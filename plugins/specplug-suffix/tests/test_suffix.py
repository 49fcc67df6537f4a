"""Tests of specplug-suffix: kernels, speculation trees, the global cache and its bounds.

The plugin's wiring (entry point, registration, options, ``specplug.vllm.suffix``) is tested in
``test_registration.py``.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import Draft, ProposalRequest
from specplug.testing import examples
from specplug_suffix import GlobalCache, SuffixOptions, SuffixProposer, kernels


def naive_local(hist, max_depth, max_occ):
    """Longest suffix (<= max_depth) occurring earlier with a continuation; starts newest first."""
    n = len(hist)
    for p in range(min(max_depth, n - 1), 0, -1):
        pattern = hist[n - p :]
        starts = [e for e in range(n - 1, p - 1, -1) if hist[e - p : e] == pattern]
        if starts:
            return p, starts[:max_occ]
    return 0, []


histories = st.integers(2, 12).flatmap(
    lambda vocab: st.lists(st.integers(0, vocab - 1), min_size=0, max_size=120).map(lambda xs: (vocab, xs))
)


# -- kernels -------------------------------------------------------------------------------------

def test_worked_example_local_tree():
    # "1 2 3" occurs three times before the final one: twice followed by 9 1 2, once by 7 1 2.
    h = np.array([5, 1, 2, 3, 9, 1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3])
    p, starts = kernels.local_matches(h, 24, 32)
    assert p == 3 and starts.tolist() == [12, 8, 4]
    rows = kernels.local_rows(h, starts, 3)
    assert rows.tolist() == [[7, 1, 2], [9, 1, 2], [9, 1, 2]]
    tokens, parents, probs = kernels.build_tree(rows, 6, 0.1, True)
    # best first: 9 (2/3), 1 (2/3), 2 (2/3), 7 (1/3), 1 (1/3), 2 (1/3); depth-first, likeliest child first
    assert tokens.tolist() == [9, 1, 2, 7, 1, 2]
    assert parents.tolist() == [-1, 0, 1, -1, 3, 4]
    assert np.allclose(probs, [2 / 3] * 3 + [1 / 3] * 3)
    chain, chain_parents, _ = kernels.build_tree(rows, 6, 0.1, False)
    assert chain.tolist() == [9, 1, 2] and chain_parents.tolist() == [-1, 0, 1]
    # min_token_prob 0.5 drops the 1/3 branch; max_spec 2 keeps the two best nodes
    assert kernels.build_tree(rows, 6, 0.5, True)[0].tolist() == [9, 1, 2]
    assert kernels.build_tree(rows, 2, 0.1, True)[0].tolist() == [9, 1]


def test_first_chain_of_the_tree_is_the_most_probable_chain():
    rows = np.array([[4, 5, 6], [4, 7, 8], [4, 7, 9], [3, 1, 1]])
    tokens, parents, probs = kernels.build_tree(rows, 8, 0.0, True)
    draft = Draft(tokens, parents)
    # first chain: node 0, then each node's first child
    chain, node = [0], 0
    while (kids := np.flatnonzero(draft.parent_array() == node)).size:
        node = int(kids[0])
        chain.append(node)
    assert tokens[chain].tolist() == [4, 7, 8]  # 4 (3/4) -> 7 (2/4) -> 8 (1/4, first seen of the tie)
    assert np.all(np.diff(probs[chain]) <= 0)


@settings(max_examples=examples(300), deadline=None)
@given(histories, st.integers(2, 8), st.integers(1, 5))
def test_local_matches_equal_the_definition(history, max_depth, max_occ):
    _, tokens = history
    got_p, got_starts = kernels.local_matches(np.array(tokens, dtype=np.int64), max_depth, max_occ)
    want_p, want_starts = naive_local(tokens, max_depth, max_occ)
    assert (got_p, got_starts.tolist()) == (want_p, want_starts)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=30), min_size=1, max_size=6), histories, st.integers(2, 8))
def test_ring_matches_equal_a_scan_of_the_cached_outputs(outputs, history, max_depth):
    _, hist = history
    hist = np.array(hist or [0], dtype=np.int64)
    cache = GlobalCache(capacity=4096, max_requests=100)
    for out in outputs:
        cache.add(np.array(out))
    p, starts = kernels.ring_matches(cache.ring, cache.prev, cache.head, cache.write, cache.lower, hist, max_depth, 10_000, 10_000)
    # the definition: every earlier output, as separate texts, matched by at least 2 tokens
    found = []
    for out in outputs:
        for e in range(2, len(out)):
            length = 0
            while length < min(max_depth, len(hist)) and e - 1 - length >= 0 and out[e - 1 - length] == hist[-1 - length]:
                length += 1
            if length >= 2:
                found.append((length, out[e:]))
    best = max((f[0] for f in found), default=0)
    assert p == best
    conts = sorted(tuple(c) for length, c in found if length == best)
    got = sorted(tuple(r[r >= 0].tolist()) for r in kernels.ring_rows(cache.ring, cache.write, starts, 64))
    assert got == conts


# -- proposer: contract properties ---------------------------------------------------------------

@settings(max_examples=examples(200), deadline=None)
@given(histories, st.integers(1, 8), st.integers(1, 64), st.booleans())
def test_proposer_respects_k_vocab_length_limit_and_is_deterministic(history, k, room, tree):
    vocab, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int64)
    max_tokens = min(k, room)
    options = SuffixOptions(tree=tree, max_spec_factor=4.0)

    def run():
        proposer = SuffixProposer(options)
        half = tokens[: max(1, len(tokens) // 2)]
        proposer.start_request("earlier", half)
        proposer.propose(ProposalRequest("earlier", tokens, len(half), max_tokens))
        proposer.finish_request("earlier")  # now in the global cache
        return proposer.propose(ProposalRequest("r", tokens, len(tokens), max_tokens))

    draft = run()
    assert len(draft) <= max_tokens
    assert draft.is_tree == (tree and len(draft) > 0)
    assert np.all((draft.token_ids >= 0) & (draft.token_ids < vocab))
    again = run()
    assert again.token_ids.tolist() == draft.token_ids.tolist()
    assert again.parent_array().tolist() == draft.parent_array().tolist()


def test_speculation_length_follows_the_match_length():
    h = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3, 4])
    request = ProposalRequest("r", h, len(h), 16)
    assert len(SuffixProposer(SuffixOptions(max_spec_factor=1.0)).propose(request)) == 4  # match "1 2 3 4"
    assert len(SuffixProposer(SuffixOptions(max_spec_factor=0.5)).propose(request)) == 2
    assert len(SuffixProposer(SuffixOptions(max_spec_factor=0.5, max_spec_offset=1)).propose(request)) == 3
    assert len(SuffixProposer(SuffixOptions(max_spec_factor=2.0)).propose(request)) == 8


def test_outputs_of_finished_requests_are_used_by_later_ones():
    proposer = SuffixProposer()
    prompt = np.array([100, 101])
    output = [7, 8, 9, 10, 11, 12, 13, 14]
    proposer.start_request("a", prompt)
    proposer.propose(ProposalRequest("a", np.array([100, 101, *output]), 2, 5))
    proposer.finish_request("a")
    assert len(proposer.cache) == 1 and proposer.requests == {}
    # A new request whose history ends with "7 8 9 10" (never seen in its own prompt)
    draft = proposer.propose(ProposalRequest("b", np.array([50, 7, 8, 9, 10]), 5, 5))
    assert draft.token_ids.tolist() == [11, 12, 13, 14] and proposer.last_source == "global"
    # The prompt of "a" is not an output: it is not cached.
    assert len(proposer.propose(ProposalRequest("c", np.array([60, 100, 101]), 3, 5))) == 0


def test_global_cache_evicts_oldest_outputs_by_count_and_by_capacity():
    cache = GlobalCache(capacity=64, max_requests=2)
    for i in range(3):
        cache.add(np.array([i, 40, 41, 42]))
    assert len(cache) == 2 and cache.outputs[0][0] == 5  # the first output (5 positions) is gone
    hist = np.array([0, 40, 41])
    p, starts = kernels.ring_matches(cache.ring, cache.prev, cache.head, cache.write, cache.lower, hist, 8, 100, 100)
    assert p == 2  # "40 41" still matches in outputs 1 and 2, but "0 40 41" (output 0) is evicted
    small = GlobalCache(capacity=64, max_requests=1000)
    for i in range(50):
        small.add(np.array([i % 7, 1, 2, 3, 4, 5, 6]))
    assert small.num_tokens <= 64 and len(small) <= 64 // 8
    assert small.ring.shape == (64,)


def test_bounded_memory_after_10000_requests():
    """10,000 synthetic requests with distinct outputs: cache and per-request state stay bounded."""
    options = SuffixOptions(max_cached_requests=500, max_cached_tokens=1 << 14, max_active_requests=64)
    proposer = SuffixProposer(options)
    rng = np.random.default_rng(0)

    def serve(i: int) -> None:
        prompt = rng.integers(0, 5000, size=16)
        out = rng.integers(0, 5000, size=24)
        history = np.concatenate([prompt, out])
        proposer.start_request(f"r{i}", prompt)
        for end in (18, 22, 30, 40):
            proposer.propose(ProposalRequest(f"r{i}", history[:end], 16, 5))
        if i % 10:  # every tenth request is never finished: the LRU bound must drop it
            proposer.finish_request(f"r{i}")

    for i in range(2000):
        serve(i)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(2000, 10_000):
        serve(i)
    grown, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(proposer.cache) <= 500
    assert proposer.cache.num_tokens <= 1 << 14
    assert len(proposer.requests) <= 64
    assert proposer.cache.nbytes() < 2 << 20  # fixed at construction
    assert grown - base < 1 << 20, f"memory grew by {grown - base} bytes over 8,000 requests"


@pytest.mark.parametrize("tree", [True, False])
def test_batch_entry_point_matches_propose_with_reused_rows(tree):
    """propose_batch gives the first chain of propose's tree, with the global cache filling as rows finish."""
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    sequences = [np.concatenate([base, rng.integers(0, 30, size=int(n)), base[:20]]).tolist() for n in rng.integers(5, 60, size=12)]
    checked = assert_batch_matches_propose(lambda: SuffixProposer(SuffixOptions(tree=tree)), sequences,
                                           [30] * len(sequences), rows=4, k=6)
    assert checked > 50
