"""Tests of specplug-pld: the kernel and the proposer.

Engine-level greedy equality (reference engine, vLLM) lives in ``test_pld_engines.py``; the plugin's
wiring (entry point, registration, options, ``specplug.vllm.pld``) in ``test_registration.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest
from specplug.testing import examples
from specplug_pld import PldOptions, PldProposer, find_ngram_continuation


def naive_continuation(tokens, min_ngram, max_ngram, max_tokens, match="earliest"):
    """The definition, spelled out with Python loops: longest n first, then earliest/latest window."""
    tokens = list(tokens)
    total = len(tokens)
    if max_tokens <= 0:
        return []
    for n in range(max_ngram, min_ngram - 1, -1):
        if n > total - 1:
            continue
        suffix = tokens[total - n :]
        starts = [s for s in range(0, total - n) if tokens[s : s + n] == suffix]
        if starts:
            s = starts[0] if match == "earliest" else starts[-1]
            return tokens[s + n : s + n + max_tokens]
    return []


# -- kernel: worked examples ---------------------------------------------------------------------

def test_worked_example_from_docstring():
    t = np.array([5, 1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3])
    assert find_ngram_continuation(t, 1, 3, 3).tolist() == [9, 1, 2]
    assert find_ngram_continuation(t, 1, 3, 3, match="latest").tolist() == [7, 1, 2]


def test_longest_ngram_beats_a_later_shorter_one():
    # suffix [2, 3]: the bigram occurs at index 1; the unigram 3 alone also occurs at index 5.
    t = np.array([1, 2, 3, 8, 9, 3, 4, 2, 3])
    assert find_ngram_continuation(t, 1, 2, 2).tolist() == [8, 9]
    assert find_ngram_continuation(t, 1, 2, 2, match="latest").tolist() == [8, 9]
    # min_ngram=3: no trigram [4, 2, 3] earlier, so nothing.
    assert find_ngram_continuation(t, 3, 3, 2).tolist() == []


def test_continuation_is_cut_at_the_end_of_history():
    t = np.array([7, 7, 7])
    # suffix [7, 7] matches window 0-1, whose continuation is the single token at index 2.
    assert find_ngram_continuation(t, 1, 2, 5).tolist() == [7]


def test_no_match_and_degenerate_inputs():
    assert find_ngram_continuation(np.array([1, 2, 3, 4]), 1, 3, 5).size == 0
    assert find_ngram_continuation(np.array([4]), 1, 3, 5).size == 0
    assert find_ngram_continuation(np.array([], dtype=np.int64), 1, 3, 5).size == 0
    assert find_ngram_continuation(np.array([1, 1, 1]), 1, 3, 0).size == 0


# -- kernel: properties --------------------------------------------------------------------------

histories = st.integers(2, 40).flatmap(
    lambda vocab: st.lists(st.integers(0, vocab - 1), min_size=0, max_size=200).map(lambda xs: (vocab, xs))
)


@settings(max_examples=examples(300), deadline=None)
@given(histories, st.integers(1, 4), st.integers(0, 3), st.integers(0, 12), st.sampled_from(["earliest", "latest"]))
def test_kernel_equals_the_definition(history, min_ngram, extra, max_tokens, match):
    _, tokens = history
    max_ngram = min_ngram + extra
    got = find_ngram_continuation(np.array(tokens, dtype=np.int64), min_ngram, max_ngram, max_tokens, match)
    assert got.tolist() == naive_continuation(tokens, min_ngram, max_ngram, max_tokens, match)


@settings(max_examples=examples(200), deadline=None)
@given(histories, st.integers(1, 8), st.integers(1, 64))
def test_proposer_respects_k_vocab_length_limit_and_is_deterministic(history, k, room):
    vocab, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int64)
    # The engine clips k to the room left before the length limit; the proposer must honour it.
    max_tokens = min(k, room)
    request = ProposalRequest("r", tokens, num_prompt_tokens=min(3, tokens.size), max_tokens=max_tokens)
    proposer = PldProposer(PldOptions(min_ngram=1, max_ngram=3))
    draft = proposer.propose(request)
    assert len(draft) <= max_tokens
    assert not draft.is_tree
    assert draft.token_ids.dtype == np.int64
    assert np.all((draft.token_ids >= 0) & (draft.token_ids < vocab))
    assert proposer.propose(request).token_ids.tolist() == draft.token_ids.tolist()


def test_num_pred_tokens_caps_the_draft():
    t = np.array([1, 2, 3, 4, 5, 6, 7, 8, 1, 2], dtype=np.int64)
    request = ProposalRequest("r", t, num_prompt_tokens=10, max_tokens=12)
    assert len(PldProposer(PldOptions()).propose(request)) == 8  # [3, ..., 8, 1, 2]: the history runs out
    assert PldProposer(PldOptions(num_pred_tokens=2)).propose(request).token_ids.tolist() == [3, 4]


@pytest.mark.vllm
@settings(max_examples=examples(300), deadline=None)
@given(histories, st.integers(1, 4), st.integers(0, 3), st.integers(1, 12))
def test_kernel_equals_vllm_ngram(history, min_ngram, extra, k):
    """Same draft as vLLM's built-in ngram kernel, so MAT compares one to one."""
    ngram = pytest.importorskip("vllm.v1.spec_decode.ngram_proposer")
    _, tokens = history
    tokens = np.array(tokens or [0], dtype=np.int32)
    max_ngram = min_ngram + extra
    expected = ngram._find_longest_matched_ngram_and_propose_tokens(tokens, min_ngram, max_ngram, 1 << 20, k)
    assert find_ngram_continuation(tokens, min_ngram, max_ngram, k).tolist() == expected.tolist()


def test_docstring_examples():
    import doctest

    import specplug_pld.proposer

    result = doctest.testmod(specplug_pld.proposer)
    assert result.attempted >= 3 and result.failed == 0


def test_batch_entry_point_matches_propose_with_reused_rows():
    from specplug.testing.batch import assert_batch_matches_propose
    from specplug_pld import PldOptions, PldProposer

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    sequences = [np.concatenate([base, rng.integers(0, 30, size=int(n)), base[:20]]).tolist() for n in rng.integers(5, 60, size=9)]
    for match in ("earliest", "latest"):
        checked = assert_batch_matches_propose(lambda: PldProposer(PldOptions(match=match, num_pred_tokens=3)), sequences,
                                               [30] * len(sequences), rows=4, k=5)
        assert checked > 50
