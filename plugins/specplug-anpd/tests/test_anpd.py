"""Tests of specplug-anpd: the n-gram table and the proposer's state handling.

The plugin's wiring (entry point, registration, options, ``specplug.vllm.anpd``) is tested in
``test_registration.py``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest
from specplug.testing import examples
from specplug_anpd import AnpdOptions, AnpdProposer, NgramTable


def naive_draft(history, min_n, max_n, max_tokens, prefer="frequent"):
    """The definition with plain loops: recount everything for every drafted token."""

    def predict(seq, context):
        for n in range(max_n, min_n - 1, -1):
            if len(context) < n - 1:
                continue
            key = tuple(context[len(context) - n + 1 :])
            followers = [(i, seq[i]) for i in range(n - 1, len(seq)) if tuple(seq[i - n + 1 : i]) == key]
            if not followers:
                continue
            if prefer == "latest":
                return followers[-1][1]
            counts = Counter(tok for _, tok in followers)
            top = max(counts.values())
            return [tok for _, tok in followers if counts[tok] == top][-1]  # ties: latest
        return None

    out: list[int] = []
    context = list(history)
    while len(out) < max_tokens:
        token = predict(history, context)  # statistics come from the committed history only
        if token is None:
            break
        out.append(token)
        context.append(token)
    return out


histories = st.integers(2, 12).flatmap(
    lambda vocab: st.lists(st.integers(0, vocab - 1), min_size=0, max_size=80).map(lambda xs: (vocab, xs))
)


def test_worked_example():
    table = NgramTable(2, 3)
    table.extend([1, 2, 3, 1, 2, 4, 1, 2])
    assert table.draft(4) == [4, 1, 2, 4]
    assert NgramTable(2, 3, prefer="latest").draft(3) == []  # empty history: nothing to say


def test_multi_level_falls_back_to_lower_orders():
    table = NgramTable(2, 4)
    table.extend([5, 6, 7, 8, 9, 6])
    # (8, 9, 6) and (9, 6) were never followed by anything; (6,) was followed by 7.
    assert table.predict([8, 9, 6]) == 7
    # With only orders 3..4 the context is unknown.
    high_only = NgramTable(3, 4)
    high_only.extend([5, 6, 7, 8, 9, 6])
    assert high_only.predict([8, 9, 6]) is None


def test_frequent_beats_latest_only_when_more_frequent():
    seq = [1, 2, 1, 2, 1, 3]
    frequent, latest = NgramTable(2, 2), NgramTable(2, 2, prefer="latest")
    frequent.extend(seq)
    latest.extend(seq)
    assert frequent.predict([1]) == 2 and latest.predict([1]) == 3


@settings(max_examples=examples(200), deadline=None)
@given(histories, st.integers(2, 4), st.integers(0, 2), st.integers(0, 8), st.sampled_from(["frequent", "latest"]))
def test_table_equals_the_definition(history, min_n, extra, k, prefer):
    _, tokens = history
    table = NgramTable(min_n, min_n + extra, prefer)
    table.extend(tokens)
    assert table.draft(k) == naive_draft(tokens, min_n, min_n + extra, k, prefer)


@settings(max_examples=examples(150), deadline=None)
@given(histories, st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_incremental_updates_equal_a_rebuild(history, chunks):
    """Feeding the history step by step (as decoding does) gives the table built at once."""
    _, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int64)
    proposer = AnpdProposer(AnpdOptions())
    cut = max(1, len(tokens) // 3)
    proposer.start_request("r", tokens[:cut])
    end = cut
    for step in chunks:
        end = min(len(tokens), end + step)
        proposer.propose(ProposalRequest("r", tokens[:end], cut, 5))
    fresh = AnpdProposer(AnpdOptions())
    request = ProposalRequest("r", tokens[:end], cut, 5)
    assert proposer.propose(request).token_ids.tolist() == fresh.propose(request).token_ids.tolist()


@settings(max_examples=examples(200), deadline=None)
@given(histories, st.integers(1, 8), st.integers(1, 64))
def test_proposer_respects_k_vocab_length_limit_and_is_deterministic(history, k, room):
    vocab, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int64)
    max_tokens = min(k, room)
    request = ProposalRequest("r", tokens, num_prompt_tokens=len(tokens), max_tokens=max_tokens)
    draft = AnpdProposer().propose(request)
    assert len(draft) <= max_tokens and not draft.is_tree
    assert np.all((draft.token_ids >= 0) & (draft.token_ids < vocab))
    assert AnpdProposer().propose(request).token_ids.tolist() == draft.token_ids.tolist()


def test_history_that_changed_is_rebuilt_not_mixed():
    proposer = AnpdProposer()
    proposer.propose(ProposalRequest("r", np.array([1, 2, 3, 1, 2, 3, 1, 2]), 8, 3))
    # The same id now carries another text (a reused vLLM row): old statistics must not leak in.
    other = np.array([7, 8, 9, 7, 8])
    assert proposer.propose(ProposalRequest("r", other, 5, 3)).token_ids.tolist() == [9, 7, 8]


def test_state_is_dropped_on_finish_and_bounded_by_max_requests():
    proposer = AnpdProposer(AnpdOptions(max_requests=3))
    for i in range(10):
        proposer.start_request(f"r{i}", np.arange(20) % 7)
    assert list(proposer.requests) == ["r7", "r8", "r9"]
    proposer.finish_request("r8")
    proposer.finish_request("never-started")
    assert list(proposer.requests) == ["r7", "r9"]


def test_num_pred_tokens_caps_the_draft():
    tokens = np.array([1, 2, 3, 4, 5, 6, 1, 2], dtype=np.int64)
    request = ProposalRequest("r", tokens, 8, 10)
    assert AnpdProposer(AnpdOptions(num_pred_tokens=2)).propose(request).token_ids.tolist() == [3, 4]


# -- the compiled tables and the batched entry point ------------------------------------------------

@settings(max_examples=examples(200), deadline=None)
@given(histories, st.integers(2, 4), st.integers(0, 2), st.integers(0, 8), st.sampled_from(["frequent", "latest"]),
       st.lists(st.integers(1, 9), min_size=1, max_size=8))
def test_compiled_proposer_equals_the_python_table(history, min_n, extra, k, prefer, chunks):
    """The proposer's hash tables, fed step by step, draft what NgramTable built at once drafts."""
    _, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int64)
    proposer = AnpdProposer(AnpdOptions(min_n=min_n, max_n=min_n + extra, prefer=prefer))
    end = 0
    for step in chunks:
        end = min(len(tokens), end + step)
        table = NgramTable(min_n, min_n + extra, prefer)
        table.extend(tokens[:end].tolist())
        assert proposer.propose(ProposalRequest("r", tokens[:end], 1, k)).token_ids.tolist() == table.draft(k)


def test_tables_rebuild_past_their_load_and_drop_finished_requests():
    """Many requests through small tables: rebuilds keep the live statistics and drop the dead ones."""
    rng = np.random.default_rng(3)
    proposer = AnpdProposer(AnpdOptions(max_requests=8))
    for i in range(60):
        tokens = rng.integers(0, 50, size=300)
        proposer.start_request(f"r{i}", tokens[:100])
        draft = proposer.propose(ProposalRequest(f"r{i}", tokens, 100, 5)).token_ids.tolist()
        table = NgramTable(2, 4)
        table.extend(tokens.tolist())
        assert draft == table.draft(5)
        proposer.finish_request(f"r{i}")
    assert len(proposer.requests) == 0
    assert proposer.ctx.shape[0] <= 1 << 13, "the context table kept dead requests' entries"


def test_batch_entry_point_matches_propose_with_reused_rows():
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    sequences = [np.concatenate([base, rng.integers(0, 30, size=int(n)), base[:20]]).tolist() for n in rng.integers(5, 60, size=9)]
    checked = assert_batch_matches_propose(lambda: AnpdProposer(AnpdOptions(min_n=2, max_n=4)), sequences,
                                           [30] * len(sequences), rows=4, k=5)
    assert checked > 50
