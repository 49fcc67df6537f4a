"""Sparse KV caches for drafters that run a model over part of its context (StreamingLLM windows).

A long-context drafter pays for attention over every cached position; a *sparse* cache keeps a
fixed budget of them, so a draft step costs the same however long the context grows. Used by
MagicDec (the target's own weights over a StreamingLLM cache) and TriForce (its small draft model
over a StreamingLLM cache, as the authors' code does).

- :func:`streaming_positions`: which cache entries StreamingLLM keeps (the first ``sinks``, the
  attention sinks, plus the most recent window).
- :class:`StreamingCache`: a causal LM with such a cache, in step with one request's text (the
  :func:`specplug.kit.drafting.draft_chain` interface: ``sync`` then ``feed``). Entries keep their
  true RoPE positions (keys are cached after rotation), so evicting one never shifts the others.

The cache is the drafter's own (a :class:`~specplug.kit.target.TargetModel` of its own): the
engine's cache, which verifies, is never read or written.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

__all__ = ["PREFILL_CHUNK", "StreamingCache", "common_prefix", "streaming_positions"]

PREFILL_CHUNK = 1024  # prompt tokens per forward when a sparse cache is first filled


def streaming_positions(length: int, sinks: int, budget: int) -> np.ndarray:
    """Cache entries StreamingLLM keeps of ``length``: the first ``sinks`` and the latest ``budget - sinks``.

    >>> streaming_positions(10, 2, 5).tolist()
    [0, 1, 7, 8, 9]
    >>> streaming_positions(4, 2, 5).tolist()
    [0, 1, 2, 3]
    """
    if length <= budget:
        return np.arange(length)
    return np.concatenate([np.arange(sinks), np.arange(length - (budget - sinks), length)])


def common_prefix(cached: Sequence[int], committed: Sequence[int], limit: int) -> int:
    """Length of the longest common prefix of ``cached`` and ``committed``, at most ``limit``."""
    n = min(len(cached), len(committed), limit)
    if list(cached[:n]) == list(committed[:n]):  # the usual case, compared in C
        return n
    same = 0
    while same < n and cached[same] == committed[same]:
        same += 1
    return same


class StreamingCache:
    """A causal LM over a StreamingLLM cache (``sinks`` + recent window, ``budget`` entries), one request.

    ``sync(text)`` brings the cache in step with ``text`` (the tokens the drafter should condition on,
    ending with the root) and returns the logits after it: the entries of the previous draft are
    dropped, the cache keeps the longest prefix of what it absorbed that ``text`` still starts with,
    the rest of ``text`` is fed, and the cache is cut back to the budget. The first fill (the prompt)
    runs with full attention in chunks of :data:`PREFILL_CHUNK` and is then cut, as StreamingLLM
    starts from a full prefill. ``feed`` appends draft tokens (dropped at the next ``sync``).
    """

    vocab = None  # the full vocabulary (draft_chain's interface)

    def __init__(self, model, sinks: int, budget: int) -> None:
        from specplug.kit.target import TargetModel

        if budget < 1 or not 0 <= sinks < budget:
            raise ValueError(f"a streaming cache needs 0 <= sinks < budget, got sinks={sinks}, budget={budget}")
        self.lm = TargetModel(model)
        self.sinks, self.budget = sinks, budget
        self.positions: list[int] = []  # true position of each cache entry (ascending)
        self.tokens: list[int] = []  # the text absorbed at the last sync
        self.mark = 0  # cache entries at the last sync (later ones are draft tokens)

    def _forward(self, tokens: Sequence[int], start: int):
        import torch

        logits = self.lm.forward(list(tokens), position_ids=torch.arange(start, start + len(tokens)), logits_to_keep=1)
        self.positions.extend(range(start, start + len(tokens)))
        return logits[-1]

    def _truncate(self, entries: int) -> None:
        self.lm.rollback(entries)
        del self.positions[entries:]

    def sync(self, text: Sequence[int]):
        """Logits [V] after ``text`` (see the class docstring)."""
        text = [int(t) for t in text]
        if not text:
            raise ValueError("a streaming cache needs at least one token to condition on")
        if self.lm.cache_len > self.mark:
            self._truncate(self.mark)
        same = common_prefix(self.tokens, text, len(text) - 1)  # the root is always fed to get its logits
        if same == 0:
            self.lm.reset()
            self.positions = []
        elif same < len(self.tokens):  # text diverged: drop entries at positions >= same
            self._truncate(bisect.bisect_left(self.positions, same))
        new = text[same:]
        logits = None
        for i in range(0, len(new), PREFILL_CHUNK):
            logits = self._forward(new[i : i + PREFILL_CHUNK], same + i)
        keep = streaming_positions(self.lm.cache_len, self.sinks, self.budget)
        if keep.shape[0] < self.lm.cache_len:
            self.lm.keep(keep.tolist())
            self.positions = [self.positions[i] for i in keep.tolist()]
        self.tokens, self.mark = text, self.lm.cache_len
        return logits

    def feed(self, tokens: Sequence[int]):
        """Logits [V] after appending ``tokens`` (draft tokens) at the next positions."""
        return self._forward(tokens, self.positions[-1] + 1)
