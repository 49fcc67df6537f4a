"""Suffix arrays over token arrays: construction by prefix doubling, and range search.

A *suffix array* ``sa`` of ``tokens`` lists every start position ``i`` ordered by the suffix
``tokens[i:]`` (lexicographically; a suffix that is a prefix of another sorts first). All suffixes
starting with a query ``q`` then form one contiguous range ``sa[lo:hi]``, found by two binary
searches.

Construction is prefix doubling (Manber and Myers): rank suffixes by their first ``h`` tokens, then
by the pair ``(rank[i], rank[i + h])`` for the first ``2h`` tokens, packed into one int64 key and
sorted by numpy. ``O(n log n)`` sorts in the worst case, but it stops as soon as every rank is unique
(after ``log2`` of the longest repeated substring), so a few million tokens take seconds.

Example::

    >>> import numpy as np
    >>> tokens = np.array([5, 7, 5, 7, 9])
    >>> build_suffix_array(tokens).tolist()      # suffixes: 57579, 7579, 579, 79, 9
    [0, 2, 1, 3, 4]
    >>> sa = build_suffix_array(tokens)
    >>> find_range(tokens, sa, [5, 7])           # both "5 7 ..." suffixes
    (0, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["build_suffix_array", "find_range"]


def build_suffix_array(tokens: np.ndarray) -> np.ndarray:
    """The suffix array of ``tokens`` (any integer values; negatives sort first), as int64.

    Past-the-end counts as smaller than every token, so a suffix that is a prefix of another sorts
    before it, the same order Python list comparison uses (see :func:`find_range`).
    """
    tokens = np.asarray(tokens).reshape(-1)  # [n]
    n = tokens.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # ranks start at 1; 0 is reserved for "past the end"
    _, rank = np.unique(tokens, return_inverse=True)
    rank = rank.astype(np.int64).reshape(-1) + 1  # [n]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    h = 1
    while True:
        second = np.zeros(n, dtype=np.int64)  # [n] rank of the suffix h tokens later
        if h < n:
            second[: n - h] = rank[h:]
        key = rank * (n + 2) + second  # [n], ranks <= n, so the pair packs without overflow for n < 3e9
        sa = np.argsort(key, kind="stable")  # [n]
        sorted_key = key[sa]
        new_sorted = np.empty(n, dtype=np.int64)
        new_sorted[0] = 1
        np.cumsum(sorted_key[1:] != sorted_key[:-1], out=new_sorted[1:])
        new_sorted[1:] += 1
        rank = np.empty(n, dtype=np.int64)
        rank[sa] = new_sorted
        if new_sorted[-1] == n or h >= n:
            return sa.astype(np.int64)
        h *= 2


def find_range(tokens: np.ndarray, sa: np.ndarray, query: Sequence[int]) -> tuple[int, int]:
    """``(lo, hi)`` such that ``sa[lo:hi]`` are exactly the suffixes that start with ``query``.

    ``tokens`` and ``sa`` may be memory-mapped: each probe reads ``len(query)`` tokens, and there
    are about ``2 log2(n)`` probes.
    """
    q = [int(t) for t in query]
    width = len(q)
    n = int(sa.shape[0])
    lo, hi = 0, n
    while lo < hi:  # first suffix whose first `width` tokens are >= q
        mid = (lo + hi) // 2
        s = int(sa[mid])
        if tokens[s : s + width].tolist() < q:
            lo = mid + 1
        else:
            hi = mid
    start, hi = lo, n
    while lo < hi:  # first suffix whose first `width` tokens are > q
        mid = (lo + hi) // 2
        s = int(sa[mid])
        if tokens[s : s + width].tolist() <= q:
            lo = mid + 1
        else:
            hi = mid
    return start, lo
