"""The n-gram pool of Lookahead decoding: recent ``N``-grams keyed by their first token.

``pool.candidates(t)`` gives up to ``G`` continuations (``N - 1`` tokens each) that followed ``t``,
most recently added first. Adding an n-gram already in the pool moves it to the front; the oldest
is dropped past ``G`` per key. The pool is bounded: at most ``G`` entries per distinct first token.

Example::

    >>> pool = NGramPool(n=3, g=2)
    >>> pool.add_sequence([1, 2, 3, 1, 2, 4, 1, 5, 6])
    >>> pool.candidates(1)
    [(5, 6), (2, 4)]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["NGramPool"]


class NGramPool:
    """Up to ``g`` continuations of ``n - 1`` tokens for each first token."""

    def __init__(self, n: int, g: int):
        if n < 2 or g < 1:
            raise ValueError(f"an n-gram pool needs n >= 2 and g >= 1, got n={n}, g={g}")
        self.n, self.g = n, g
        self._table: dict[int, OrderedDict[tuple[int, ...], None]] = {}

    def add(self, first: int, rest: Sequence[int]) -> None:
        rest = tuple(int(t) for t in rest)
        if len(rest) != self.n - 1:
            raise ValueError(f"an n-gram continuation has {self.n - 1} tokens, got {len(rest)}")
        entries = self._table.setdefault(int(first), OrderedDict())
        entries.pop(rest, None)
        entries[rest] = None
        while len(entries) > self.g:
            entries.popitem(last=False)

    def add_sequence(self, tokens: Sequence[int], start: int = 0) -> None:
        """Add every n-gram of ``tokens`` that starts at ``start`` or later."""
        tail = [int(t) for t in tokens[max(0, start) :]]
        for i in range(len(tail) - self.n + 1):
            self.add(tail[i], tail[i + 1 : i + self.n])

    def candidates(self, first: int) -> list[tuple[int, ...]]:
        entries = self._table.get(int(first))
        return list(reversed(entries)) if entries else []

    def __len__(self) -> int:
        return sum(len(e) for e in self._table.values())
