import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.testing import examples
from specplug_rest.suffix_array import build_suffix_array, find_range

token_lists = st.lists(st.integers(min_value=-1, max_value=3), min_size=0, max_size=60)


def brute_sa(tokens: list[int]) -> list[int]:
    return sorted(range(len(tokens)), key=lambda i: tokens[i:])


@settings(max_examples=examples(200), deadline=None)
@given(token_lists)
def test_suffix_array_matches_brute_force(tokens):
    assert build_suffix_array(np.array(tokens, dtype=np.int64)).tolist() == brute_sa(tokens)


@settings(max_examples=examples(200), deadline=None)
@given(token_lists, st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5))
def test_find_range_is_exactly_the_matching_suffixes(tokens, query):
    arr = np.array(tokens, dtype=np.int32)
    sa = build_suffix_array(arr).astype(np.int32)
    lo, hi = find_range(arr, sa, query)
    found = sorted(sa[lo:hi].tolist())
    expected = [i for i in range(len(tokens)) if tokens[i : i + len(query)] == query]
    assert found == expected


def test_highly_repetitive_input_terminates_and_is_right():
    tokens = np.array([7] * 1000 + [1, 7, 7], dtype=np.int64)
    assert build_suffix_array(tokens).tolist() == brute_sa(tokens.tolist())
