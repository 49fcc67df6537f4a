"""Adaptive n-gram parallel decoding (ANPD): an online multi-level n-gram table per request.

Ou, Chen and Tian, "Lossless Acceleration of Large Language Model via Adaptive N-gram Parallel
Decoding", NAACL 2024 Industry Track, arXiv 2404.08698. The drafter is an n-gram model of the
request itself: it is built from the prompt when the request starts and updated online with every
token the request emits ("adaptive": its statistics follow the current text). Drafting is
autoregressive on the table: look up the next token from the last ``n - 1`` tokens, append it,
look up again, up to ``k`` tokens. The paper's Multi-Level N-gram (MLN) keeps one table per order
``n`` and, for every drafted token, asks the highest order first and falls back to lower orders
when the context was never seen. The target model then verifies the draft as usual (lossless).

Contents:

- :class:`NgramTable`: the multi-level table (engine-free, pure Python dicts) and its draft loop.
- :class:`AnpdOptions`: the method's options.
- :class:`AnpdProposer`: per-request tables, synchronised with the committed tokens each step,
  dropped on ``finish_request`` and bounded by ``max_requests`` (least recently used evicted).

Which next token a context predicts: with ``prefer="frequent"`` (default), the token seen most
often after that context so far ("real-time statistics"), ties going to the most recent one; with
``prefer="latest"``, simply the most recent continuation.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest

__all__ = ["AnpdOptions", "AnpdProposer", "NgramTable"]


class NgramTable:
    """One request's multi-level n-gram table, orders ``min_n..max_n``.

    Level ``n`` maps a context of ``n - 1`` tokens to ``[best_token, best_count, counts]``, where
    ``counts`` maps each token seen after that context to how often. Memory per level is at most
    one entry per committed token, so the table is bounded by the request's length.

    Worked example, orders 2..3, tokens ``[1, 2, 3, 1, 2, 4, 1, 2]``:

    - order 3 (context of 2 tokens): ``(1, 2) -> 3`` (once) and ``-> 4`` (once), ``(2, 3) -> 1``,
      ``(3, 1) -> 2``, ``(2, 4) -> 1``, ``(4, 1) -> 2``;
    - order 2: ``(1,) -> 2`` (three times), ``(2,) -> 3`` and ``-> 4``, ``(3,) -> 1``, ``(4,) -> 1``;
    - drafting 4 tokens after ``[.., 1, 2]``: order 3 asks ``(1, 2)``: 3 and 4 tie, the latest (4)
      wins; then ``(2, 4) -> 1``, ``(4, 1) -> 2``, ``(1, 2) -> 4``: draft ``[4, 1, 2, 4]``.

    >>> t = NgramTable(2, 3)
    >>> t.extend([1, 2, 3, 1, 2, 4, 1, 2])
    >>> t.draft(4)
    [4, 1, 2, 4]
    """

    def __init__(self, min_n: int, max_n: int, prefer: Literal["frequent", "latest"] = "frequent"):
        if not 2 <= min_n <= max_n:
            raise ValueError(f"need 2 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")
        self.min_n, self.max_n, self.prefer = min_n, max_n, prefer
        self.levels: dict[int, dict[tuple[int, ...], list]] = {n: {} for n in range(max_n, min_n - 1, -1)}
        self.tail: list[int] = []  # the last max_n - 1 tokens seen (the context of the next token)
        self.num_tokens = 0

    def extend(self, new_tokens) -> None:
        """Add tokens to the history and count every (context, next token) pair they complete."""
        frequent = self.prefer == "frequent"
        tail, keep = self.tail, self.max_n - 1
        for token in new_tokens:
            token = int(token)
            for n, level in self.levels.items():
                if len(tail) < n - 1:
                    continue
                key = tuple(tail[len(tail) - n + 1 :])
                entry = level.get(key)
                if entry is None:
                    level[key] = [token, 1, {token: 1}]
                    continue
                counts = entry[2]
                count = counts.get(token, 0) + 1
                counts[token] = count
                if not frequent or count >= entry[1]:
                    entry[0], entry[1] = token, count
            tail.append(token)
            if len(tail) > keep:
                del tail[0]
        self.num_tokens += len(new_tokens)

    def predict(self, context: list[int]) -> int | None:
        """The next token after ``context`` from the highest order that knows it, else None."""
        for n, level in self.levels.items():
            if len(context) >= n - 1:
                entry = level.get(tuple(context[len(context) - n + 1 :]))
                if entry is not None:
                    return entry[0]
        return None

    def draft(self, max_tokens: int) -> list[int]:
        """Up to ``max_tokens`` tokens, each predicted from the history plus the tokens before it."""
        context = list(self.tail)
        out: list[int] = []
        while len(out) < max_tokens:
            token = self.predict(context)
            if token is None:
                break
            out.append(token)
            context.append(token)
            del context[0]
        return out

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels.values())


class AnpdOptions(MethodOptions):
    """Options of ``anpd``."""

    min_n: int = Field(2, ge=2, description="Lowest n-gram order consulted (order n looks at n - 1 tokens).")
    max_n: int = Field(4, ge=2, description="Highest n-gram order, asked first (multi-level fallback goes down to min_n).")
    prefer: Literal["frequent", "latest"] = Field(
        "frequent", description="Which continuation a context predicts: the most frequent so far, or the latest."
    )
    num_pred_tokens: int | None = Field(None, ge=1, description="Draft at most this many tokens per step; None: the engine's k.")
    max_requests: int = Field(
        1024, ge=1, description="Most per-request tables kept; beyond it the least recently used is dropped."
    )

    @model_validator(mode="after")
    def _check_range(self) -> AnpdOptions:
        if self.max_n < self.min_n:
            raise ValueError(f"max_n ({self.max_n}) must be >= min_n ({self.min_n})")
        return self


class _Request:
    __slots__ = ("table", "first", "last")

    def __init__(self, table: NgramTable):
        self.table = table
        self.first = -1  # token 0 and the last token seen: a cheap check that the history is ours
        self.last = -1


class AnpdProposer(BaseProposer):
    """ANPD over the committed tokens of each request (prompt + emitted).

    The table is built on ``start_request`` (or lazily on the first ``propose``) and extended with
    only the tokens committed since the previous step. If the history no longer continues what the
    table saw (a shorter history, or a different first or last token), the table is rebuilt.
    """

    def __init__(self, options: AnpdOptions | None = None):
        self.options = options or AnpdOptions()
        self.requests: OrderedDict[str, _Request] = OrderedDict()

    def _new_table(self) -> NgramTable:
        o = self.options
        return NgramTable(o.min_n, o.max_n, o.prefer)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.requests.pop(request_id, None)
        self._sync(request_id, np.asarray(prompt_ids))

    def finish_request(self, request_id: str) -> None:
        self.requests.pop(request_id, None)

    def _sync(self, request_id: str, tokens: np.ndarray) -> NgramTable:
        state = self.requests.get(request_id)
        n = int(tokens.shape[0])
        if state is not None:
            seen = state.table.num_tokens
            if n < seen or (seen and (int(tokens[0]) != state.first or int(tokens[seen - 1]) != state.last)):
                state = None  # not the history this table was built from: start over
        if state is None:
            state = _Request(self._new_table())
            self.requests[request_id] = state
            while len(self.requests) > self.options.max_requests:
                self.requests.popitem(last=False)
        else:
            self.requests.move_to_end(request_id)
        seen = state.table.num_tokens
        if n > seen:
            state.table.extend(tokens[seen:].tolist())
            state.first, state.last = int(tokens[0]), int(tokens[n - 1])
        return state.table

    def propose(self, request: ProposalRequest) -> Draft:
        table = self._sync(request.request_id, request.token_ids)
        limit = request.max_tokens
        if self.options.num_pred_tokens is not None:
            limit = min(limit, self.options.num_pred_tokens)
        return Draft(np.asarray(table.draft(limit) if limit > 0 else [], dtype=np.int64))
