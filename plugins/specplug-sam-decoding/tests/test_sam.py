"""Tests of specplug-sam-decoding: the automata, the draft rule, the corpus and the per-request state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest
from specplug.testing import examples
from specplug_sam_decoding import SamOptions, SamProposer
from specplug_sam_decoding import automaton as sam

NO_STATES, NO_EDGES = np.zeros((1, 4), np.int32), np.zeros((1, 3), np.int32)

texts = st.integers(2, 6).flatmap(lambda vocab: st.lists(st.integers(0, vocab - 1), min_size=1, max_size=80))


@settings(max_examples=examples(300), deadline=None)
@given(texts, st.integers(1, 7))
def test_dynamic_match_equals_brute_force_after_every_token(text, stride):
    """The automaton's longest match (and its first occurrence) equals a brute-force search, whether the
    tokens arrive one at a time or several per step (as accepted drafts commit)."""
    tokens = np.array(text, dtype=np.int32)
    a = sam.Automaton(4)
    ends = list(range(stride, len(text), stride)) + [len(text)]
    for n in ends:
        a.reserve(n)
        sam.follow(a.states, a.edges, a.meta, tokens, n, NO_STATES, NO_EDGES, False)
        length, end = sam.longest_match_brute_force(text, n - 1)
        assert int(a.meta[sam.D_LEN]) == length
        if length:
            assert int(a.states[a.meta[sam.D_STATE], sam.POS]) == end
    assert a.num_states <= 2 * len(text) + 1


@settings(max_examples=examples(200), deadline=None)
@given(texts, texts)
def test_static_match_equals_brute_force(corpus, text):
    states, edges = sam.build_static(np.array(corpus, dtype=np.int32))
    a = sam.Automaton(len(text))
    sam.follow(a.states, a.edges, a.meta, np.array(text, dtype=np.int32), len(text), states, edges, True)
    expected = 0
    for length in range(1, len(text) + 1):
        pattern = text[len(text) - length :]
        if any(corpus[s : s + length] == pattern for s in range(len(corpus) - length + 1)):
            expected = length
        else:
            break
    assert int(a.meta[sam.S_LEN]) == expected


def test_worked_example_drafts_after_the_first_occurrence():
    # "1 2 3" occurred at positions 1-3, followed by 9 8; the history ends in "1 2 3" again.
    tokens = np.array([5, 1, 2, 3, 9, 8, 7, 1, 2, 3], dtype=np.int64)
    proposer = SamProposer()
    draft = proposer.propose(ProposalRequest("r", tokens, 4, 4))
    assert draft.token_ids.tolist() == [9, 8, 7, 1]
    assert proposer.last_source == "dynamic" and proposer.last_match == 3


def test_static_corpus_drafts_when_its_match_is_longer(tmp_path):
    corpus = np.array([4, 4, 10, 11, 12, 13, 14, 15, -1, 20, 21], dtype=np.int32)
    np.save(tmp_path / "c.npy", corpus)
    proposer = SamProposer(SamOptions(corpus=str(tmp_path / "c.npy")))
    draft = proposer.propose(ProposalRequest("r", np.array([7, 10, 11, 12]), 2, 8))
    assert draft.token_ids.tolist() == [13, 14, 15]  # stops at the document separator
    assert proposer.last_source == "static" and proposer.last_match == 3
    # a corpus match no longer than the dynamic one by more than static_margin loses to the dynamic one
    text = np.array([9, 11, 12, 30, 10, 11, 12])  # dynamic match "11 12" (2 tokens), static "10 11 12" (3)
    assert SamProposer(SamOptions(corpus=str(tmp_path / "c.npy"))).propose(ProposalRequest("r", text, 2, 8)).token_ids.tolist() == [13, 14, 15]
    proposer = SamProposer(SamOptions(corpus=str(tmp_path / "c.npy"), static_margin=1))
    assert proposer.propose(ProposalRequest("r", text, 2, 8)).token_ids.tolist() == [30, 10, 11, 12]
    assert proposer.last_source == "dynamic"


def test_auxiliary_drafts_when_both_matches_are_short():
    tokens = np.array([1, 2, 3, 4, 5, 6, 1, 2], dtype=np.int64)  # dynamic match "1 2" (length 2)
    alone = SamProposer(SamOptions(min_match=3))
    assert len(alone.propose(ProposalRequest("r", tokens, 2, 4))) == 0
    helped = SamProposer(SamOptions(min_match=3, auxiliary="pld", auxiliary_options={"min_ngram": 1, "max_ngram": 2}))
    assert helped.propose(ProposalRequest("r", tokens, 2, 4)).token_ids.tolist() == [3, 4, 5, 6]
    assert helped.last_source == "auxiliary"


def test_auxiliary_must_be_token_only():
    with pytest.raises(ValueError, match="token ids"):
        SamProposer(SamOptions(auxiliary="recycling"))


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.npy"), "does not exist"),
    (lambda p: (np.save(p / "e.npy", np.zeros(0, np.int32)), str(p / "e.npy"))[1], "empty"),
    (lambda p: (np.save(p / "s.npy", np.full(3, -1, np.int32)), str(p / "s.npy"))[1], "empty"),
    (lambda p: (p.joinpath("d").mkdir(), str(p / "d"))[1], "without tokens.npy"),
    (lambda p: (np.save(p / "f.npy", np.ones(3)), str(p / "f.npy"))[1], "integer"),
])
def test_bad_corpus_is_refused_naming_the_problem(tmp_path, make, message):
    from specplug.registry import get_registry

    with pytest.raises(Exception, match=message):
        get_registry().method("sam_decoding").build({"corpus": make(tmp_path)})


def test_state_is_freed_when_requests_end_and_bounded_otherwise():
    proposer = SamProposer(SamOptions(max_active_requests=8))
    rng = np.random.default_rng(0)
    for i in range(40):
        tokens = rng.integers(0, 50, size=100)
        proposer.start_request(f"r{i}", tokens[:20])
        for n in range(20, 100, 7):
            proposer.propose(ProposalRequest(f"r{i}", tokens[:n], 20, 5))
        if i % 5:
            proposer.finish_request(f"r{i}")
    assert len(proposer.requests) <= 8
    for rid in list(proposer.requests):
        proposer.finish_request(rid)
    assert not proposer.requests


def test_batch_entry_point_matches_propose_with_reused_rows(tmp_path):
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    np.save(tmp_path / "c.npy", np.concatenate([base, [-1], rng.integers(0, 30, size=50)]).astype(np.int32))
    sequences = [np.concatenate([rng.integers(0, 30, size=int(n)), base[:25], base[:20]]).tolist() for n in rng.integers(5, 60, size=9)]
    options = SamOptions(corpus=str(tmp_path / "c.npy"), min_match=2, auxiliary="pld")
    checked = assert_batch_matches_propose(lambda: SamProposer(options), sequences, [30] * len(sequences), rows=4, k=5)
    assert checked > 50


def test_vllm_adapter_trace_leaves_no_request_state():
    """Requests driven through the custom_class adapter as vLLM drives it; once every row has been
    reused and the adapter told them finished, the proposer holds no automaton."""
    from specplug.testing.adapter import vllm_config
    from specplug.vllm import sam_decoding

    drafter = sam_decoding(vllm_config(4, {}, 128, 1000))
    rng = np.random.default_rng(1)
    token_ids = np.zeros((2, 128), dtype=np.int32)
    for request in range(6):
        row = request % 2
        prompt = rng.integers(3, 1000, size=20)
        token_ids[row, :20] = prompt
        token_ids[row, 20:40] = prompt
        lengths = np.zeros(2, dtype=np.int32)
        lengths[row] = 40
        sampled = [[], []]
        sampled[row] = [int(prompt[-1])]
        drafter.propose(sampled, lengths, token_ids)
        assert len(drafter.proposer.requests) <= 2
    drafter.finish_requests(list(drafter.proposer.requests)) if hasattr(drafter, "finish_requests") else None
    assert len(drafter.proposer.requests) <= 2


def test_pooled_automata_match_brute_force_through_growth_packing_and_reuse():
    """Many requests share the pool's arrays, interleaved: regions grow (and move), finished ones leave
    holes that packing reclaims, ids are reused with shorter texts. Every row's match after every step
    still equals a brute-force search over that row's own text."""
    from specplug_sam_decoding.pool import AutomatonPool, step_rows

    rng = np.random.default_rng(3)
    pool = AutomatonPool(max_requests=6, units=300)
    rows, width = 4, 700
    token_ids = np.zeros((rows, width), np.int32)
    texts: list[list[int]] = [[] for _ in range(rows)]
    lengths = np.zeros(rows, np.int64)
    ids = [f"req-{r}" for r in range(rows)]
    out = np.zeros((rows, 3), np.int32)
    counts, sources, matches = np.zeros(rows, np.int32), np.zeros(rows, np.int64), np.zeros(rows, np.int64)
    moved = packed = 0
    for step in range(260):
        for row in range(rows):
            if lengths[row] >= len(texts[row]):  # the row's request ended: a new one (sometimes the same id again)
                pool.release(ids[row]) if rng.random() < 0.7 else None
                ids[row] = ids[row] if rng.random() < 0.3 else f"req-{step}-{row}"
                texts[row] = rng.integers(0, 4, size=int(rng.integers(20, width))).tolist()
                token_ids[row, : len(texts[row])] = texts[row]
                lengths[row] = int(rng.integers(1, 10))
            lengths[row] = min(len(texts[row]), lengths[row] + int(rng.integers(1, 9)))
        bases = pool.base.copy()
        top = pool.top
        slots = pool.slots_for(ids, np.ones(rows, bool), lengths)
        moved += int(np.any(pool.base[: bases.shape[0]] != bases))
        packed += int(pool.top < top)
        limits = np.full(rows, 3, np.int64)
        pool.slots.clock = step_rows(pool.states, pool.edges, pool.meta, pool.base, pool.units, slots, token_ids, lengths, limits,
                                     NO_STATES, NO_EDGES, np.zeros(1, np.int32) - 1, False, 1, 0, out, counts, sources, matches,
                                     pool.slots.used, pool.slots.clock)
        for row in range(rows):
            n = int(lengths[row])
            assert int(pool.meta[slots[row], sam.D_LEN]) == sam.longest_match_brute_force(texts[row], n - 1)[0], (step, row)
    assert moved and packed  # regions did move and holes were reclaimed
    for rid in list(pool.requests):
        pool.release(rid)
    assert not pool.requests and not pool.units.any()
