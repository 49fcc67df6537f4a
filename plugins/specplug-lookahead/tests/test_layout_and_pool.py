import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.testing import examples
from specplug.testing.toy import ToyTarget, plain, speculate
from specplug_lookahead.layout import build_layout, ngram_trie
from specplug_lookahead.pool import NGramPool
from specplug_lookahead.proposer import LookaheadOptions, LookaheadPoolProposer


def visible_sequence(layout, row):
    """The tokens row ``row`` sees, ordered by position; None if the positions are not 0, 1, ..., pos(row)."""
    cols = np.flatnonzero(layout.allow[row])
    pos = layout.positions[cols]
    order = np.argsort(pos)
    if pos[order].tolist() != list(range(layout.positions[row] + 1)) or cols[order][-1] != row:
        return None
    return layout.tokens[cols[order]].tolist()


@settings(max_examples=examples(100), deadline=None)
@given(
    st.integers(0, 20), st.integers(1, 6), st.integers(2, 5),
    st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=4), max_size=5), st.integers(0, 10_000),
)
def test_every_row_sees_one_causal_sequence(root, width, ngram, candidates, seed):
    window = np.random.default_rng(seed).integers(0, 50, size=(ngram - 1, width))
    layout = build_layout(root, candidates, window)
    t = len(layout.tokens)
    m = len(layout.draft)
    assert t == 1 + m + (ngram - 1) * width - 1
    for row in range(t):
        seq = visible_sequence(layout, row)
        assert seq is not None and seq[0] == root
    # trie rows see exactly root + their path; window rows see root + level 0 up to their column + their column
    for k in range(m):
        assert visible_sequence(layout, 1 + k) == [root] + layout.draft.token_ids[layout.draft.path_to(k)].tolist()
    for j in range(ngram - 1):
        for i in range(width):
            expect = [root] + window[0, 1 : i + 1].tolist() + window[1 : j + 1, i].tolist()
            assert visible_sequence(layout, layout.window_index[j, i]) == expect
    assert layout.last_level.tolist() == layout.window_index[-1].tolist()


def test_trie_merges_shared_prefixes_in_candidate_order():
    d = ngram_trie([(1, 2, 3), (1, 2, 4), (5,)])
    assert d.token_ids.tolist() == [1, 2, 3, 4, 5] and d.parents.tolist() == [-1, 0, 1, 1, -1]


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(0, 5), max_size=80), st.integers(2, 4), st.integers(1, 3))
def test_pool_holds_the_latest_distinct_ngrams_per_first_token(tokens, n, g):
    pool = NGramPool(n, g)
    half = len(tokens) // 2
    pool.add_sequence(tokens[: half + n - 1])  # two increments give the same pool as one pass
    pool.add_sequence(tokens, start=half)
    for first in set(tokens):
        seen = []
        for i in range(len(tokens) - n + 1):
            if tokens[i] == first:
                gram = tuple(tokens[i + 1 : i + n])
                if gram in seen:
                    seen.remove(gram)
                seen.append(gram)
        assert pool.candidates(first) == list(reversed(seen))[:g]


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=10), st.integers(1, 8), st.integers(1, 50), st.integers(0, 5), st.integers(1, 3))
def test_pool_proposer_greedy_identical_on_random_histories(prompt, k, n, seed, order):
    target = ToyTarget(vocab=8, seed=seed, order=order)
    out, steps, drafts = speculate(LookaheadPoolProposer(LookaheadOptions(ngram=3, guesses=3)), target, prompt, n, k)
    assert out == plain(target, prompt, n)


def test_pool_proposer_repeats_a_loop_it_has_seen():
    target = ToyTarget(vocab=5, seed=0, order=1)  # a first-order map: the output cycles
    out, steps, _ = speculate(LookaheadPoolProposer(LookaheadOptions(ngram=5, guesses=2)), target, [1], 60, 4)
    assert out == plain(target, [1], 60)
    assert steps < 25
