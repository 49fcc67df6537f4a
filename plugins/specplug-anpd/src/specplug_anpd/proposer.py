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
  dropped on ``finish_request`` and bounded by ``max_requests`` (least recently used evicted);
  the same statistics as :class:`NgramTable`, kept compiled (:mod:`specplug_anpd.kernels`) so a
  whole batch is followed and drafted in one call.

Which next token a context predicts: with ``prefer="frequent"`` (default), the token seen most
often after that context so far ("real-time statistics"), ties going to the most recent one; with
``prefer="latest"``, simply the most recent continuation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug.kit.slots import RequestSlots
from specplug_anpd import kernels

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


class AnpdProposer(BaseProposer):
    """ANPD over the committed tokens of each request (prompt + emitted).

    A request's table is built on ``start_request`` (or on its first ``propose``) and extended with
    only the tokens committed since the previous step. If the history no longer continues what the
    table saw (a shorter history, or a different first or last token), the table is rebuilt. Tables
    are dropped on ``finish_request`` and bounded by ``max_requests`` (least recently used evicted).

    The tables are :class:`NgramTable`'s statistics kept in compiled hash tables shared by all
    requests (:mod:`specplug_anpd.kernels`), so ``propose_batch`` (the
    :class:`~specplug.protocols.BatchProposer` entry point) follows and drafts a whole batch in one
    call; ``propose`` is the same code on one row.
    """

    stateless = False

    def __init__(self, options: AnpdOptions | None = None):
        self.options = options or AnpdOptions()
        self.slots = RequestSlots(self.options.max_requests, on_grow=self._grow_slots)
        self.next_gen = 0
        self._grow_slots(self.slots.capacity)
        self._tables(1 << 10, 1 << 10)

    @property
    def requests(self) -> dict[str, int]:
        """Live request ids (and their slots), in order of opening."""
        return self.slots.index

    def _grow_slots(self, capacity: int) -> None:
        state = np.zeros((capacity, 4), np.int64)  # [slots, 4]: see kernels.step_rows
        old = getattr(self, "state", None)
        if old is not None:
            state[: old.shape[0]] = old
        self.state = state

    def _tables(self, contexts: int, pairs: int) -> None:
        """Empty hash tables of the given (power-of-two) sizes (see :mod:`specplug_anpd.kernels`)."""
        self.ctx = np.zeros((contexts, kernels.TOK + max(1, self.options.max_n - 1)), np.int64)  # [C, 4 + max_n - 1]
        self.ctx[:, kernels.GEN] = kernels.EMPTY
        self.pairs = np.zeros((pairs, 3), np.int64)  # [P, 3]
        self.pairs[:, kernels.P_CTX] = kernels.EMPTY
        self.sizes = np.zeros(2, np.int64)  # entries in use (garbage included): contexts, pairs

    def _rebuild(self, need: int) -> None:
        """Drop dead tables' entries and grow both hash tables to hold ``need`` more entries each."""
        slots = np.fromiter(self.slots.index.values(), np.int64, len(self.slots))
        live = np.sort(self.state[slots, kernels.S_GEN])
        contexts, pairs, keep = kernels.count_live(self.ctx, self.pairs, live)
        size = lambda used: 1 << max(10, int((used + need) / kernels.MAX_LOAD * 1.5).bit_length())  # noqa: E731
        old_ctx, old_pairs = self.ctx, self.pairs
        self._tables(size(contexts), size(pairs))
        kernels.rehash(keep, old_ctx, old_pairs, self.ctx, self.pairs, self.sizes)

    def _open(self, row: int, slot: int) -> None:
        self.state[slot, kernels.S_GEN], self.state[slot, kernels.S_SEEN] = self.next_gen, 0
        self.next_gen += 1

    def _step(self, token_ids, lengths, limits, slots, out, counts) -> None:
        o = self.options
        row = 0
        levels = o.max_n - o.min_n + 1
        while row >= 0:
            row, self.slots.clock, self.next_gen = kernels.step_rows(
                token_ids, lengths, limits, slots, row, self.state, self.slots.used, self.slots.clock, self.next_gen,
                o.min_n, o.max_n, o.prefer == "frequent", self.ctx, self.pairs, self.sizes, out, counts,
            )
            if row >= 0:
                self._rebuild(int(lengths[row]) * levels)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        slot, _ = self.slots.open(request_id)
        self._open(0, slot)
        prompt = np.asarray(prompt_ids)[None, :]  # [1, n]
        n = np.array([prompt.shape[1]], np.int64)
        self._step(prompt, n, np.zeros(1, np.int64), np.array([slot], np.int64), np.empty((1, 0), np.int64),
                   np.zeros(1, np.int64))

    def finish_request(self, request_id: str) -> None:
        self.slots.release(request_id)  # its entries are garbage from now on, dropped at the next rebuild

    def _limit(self, max_tokens):
        cap = self.options.num_pred_tokens
        return max_tokens if cap is None else np.minimum(max_tokens, cap)

    def propose(self, request: ProposalRequest) -> Draft:
        limit = int(self._limit(request.max_tokens))
        tokens = request.token_ids[None, :]  # [1, n]
        slots = self.slots.slots_for([request.request_id], np.ones(1, np.bool_), self._open)
        out = np.empty((1, max(limit, 0)), np.int64)
        counts = np.zeros(1, np.int64)
        self._step(tokens, np.array([tokens.shape[1]], np.int64), np.array([max(limit, 0)], np.int64), slots, out, counts)
        return Draft(out[0, : counts[0]])

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        """Every live row's draft in ``out``; see :class:`~specplug.protocols.BatchProposer`."""
        if request_ids is None:
            raise ValueError("anpd keeps per-request tables: propose_batch needs request_ids")
        max_tokens = np.asarray(max_tokens, dtype=np.int64)
        active = max_tokens > 0
        slots = self.slots.slots_for(request_ids, active, self._open)
        counts = np.zeros(token_ids.shape[0], dtype=np.int32)
        limits = np.where(active, self._limit(max_tokens), -1)  # -1: skip the row
        self._step(token_ids, np.asarray(lengths, dtype=np.int64), limits, slots, out, counts)
        return counts
