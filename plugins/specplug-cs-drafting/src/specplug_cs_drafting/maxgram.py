"""The statistical model at the bottom of the cascade: Max-Gram (MaG), engine-free.

CS Drafting's cheapest drafter costs no neural forward: it finds the longest suffix of the text so far
(up to ``max_ngram`` tokens) that occurred earlier in the same text (prompt and generated tokens) and
proposes what followed its most recent occurrence, one token at a time, extending the match with its
own proposals. With no match for any n-gram it proposes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["maxgram_continue"]


def maxgram_continue(context: Sequence[int], n: int, max_ngram: int = 3) -> list[int]:
    """Up to ``n`` tokens continuing ``context`` by Max-Gram matching (fewer when nothing matches)."""
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be >= 1, got {max_ngram}")
    text = [int(t) for t in context]
    out: list[int] = []
    while len(out) < n:
        nxt = _next_token(text, max_ngram)
        if nxt is None:
            break
        out.append(nxt)
        text.append(nxt)
    return out


def _next_token(text: list[int], max_ngram: int) -> int | None:
    """The token after the most recent earlier occurrence of the longest matching suffix."""
    for size in range(min(max_ngram, len(text) - 1), 0, -1):
        suffix = text[-size:]
        for start in range(len(text) - size - 1, -1, -1):  # most recent occurrence first, not the suffix itself
            if text[start : start + size] == suffix:
                return text[start + size]
    return None
