"""The second, cheapest stage: a backoff n-gram model over the request's own context (pure Python).

Spector & Re (arXiv 2308.04623) speed the draft model up with speculative decoding whose drafter is a
Katz backoff trigram model. :class:`BackoffNgram` is that kind of model: counts of every n-gram (n up
to ``order``) in the tokens seen so far, and the backoff estimate

    P(w | h) = (c(h, w) - D) / c(h)                 if c(h, w) > 0
             = alpha(h) * P(w | h minus its first token)   otherwise,

with an absolute discount ``D`` (Katz's Good-Turing discounts need corpus-sized counts) and
``alpha(h)`` the discounted mass spread over the continuations ``h`` has not been seen with, so each
``P(. | h)`` sums to one. The unigram level is the relative frequency. :meth:`BackoffNgram.guess` is
the most likely next token, which is what a greedy draft model is speculated with.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

__all__ = ["BackoffNgram"]


class BackoffNgram:
    """Counts n-grams of one token stream as it grows; see the module docstring."""

    def __init__(self, order: int = 3, discount: float = 0.5) -> None:
        if isinstance(order, bool) or int(order) != order or order < 1:
            raise ValueError(f"n-gram order must be an integer >= 1 (3 is the paper's trigram), got {order!r}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"n-gram discount must lie strictly between 0 and 1, got {discount!r}")
        self.order, self.discount = int(order), float(discount)
        self.tokens: list[int] = []
        self.follow: dict[tuple[int, ...], Counter] = defaultdict(Counter)  # history -> next-token counts

    def update(self, stream: Sequence[int]) -> None:
        """Count the tokens of ``stream`` beyond those already seen (``stream`` extends the last one;
        a stream that does not starts the counts afresh)."""
        stream = [int(t) for t in stream]
        if stream[: len(self.tokens)] != self.tokens:
            self.tokens, self.follow = [], defaultdict(Counter)
        for i in range(len(self.tokens), len(stream)):
            for n in range(self.order):  # histories of length 0 .. order - 1 ending before i
                if i - n < 0:
                    break
                self.follow[tuple(stream[i - n: i])][stream[i]] += 1
        self.tokens = stream

    def distribution(self, history: Sequence[int]) -> dict[int, float]:
        """``P(. | history)`` over the tokens seen (the last ``order - 1`` of ``history`` count)."""
        context = tuple(int(t) for t in history[max(0, len(history) - self.order + 1):]) if self.order > 1 else ()
        return self._backoff(context)

    def _backoff(self, h: tuple[int, ...]) -> dict[int, float]:
        counts = self.follow.get(h)
        if not h:
            total = sum(counts.values()) if counts else 0
            return {w: c / total for w, c in counts.items()} if total else {}
        lower = self._backoff(h[1:])
        if not counts:
            return lower
        total = sum(counts.values())
        dist = {w: (c - self.discount) / total for w, c in counts.items()}
        left = self.discount * len(counts) / total  # the discounted mass
        unseen = 1.0 - sum(lower.get(w, 0.0) for w in counts)
        if unseen > 1e-12:
            alpha = left / unseen
            for w, p in lower.items():
                if w not in counts:
                    dist[w] = alpha * p
        return dist

    def guess(self, history: Sequence[int]) -> int | None:
        """The most likely next token after ``history`` (ties: the smaller id), or None before any count."""
        dist = self.distribution(history)
        if not dist:
            return None
        return max(dist.items(), key=lambda item: (item[1], -item[0]))[0]

    def chain(self, history: Sequence[int], length: int) -> list[int]:
        """``length`` greedy guesses continuing ``history`` (fewer if the model has none)."""
        out: list[int] = []
        seq = list(history)
        for _ in range(length):
            token = self.guess(seq)
            if token is None:
                break
            out.append(token)
            seq.append(token)
        return out
