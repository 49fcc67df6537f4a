"""SuffixDecoding: speculation from the request's own history and from earlier outputs.

Oliaro, Jia, Campos, Qiao, "SuffixDecoding: Extreme Speculative Decoding for Emerging AI
Applications" (first titled "A Model-Free Approach to Speeding Up Large Language Model
Inference"), arXiv 2411.04975. The method keeps two sources of candidate continuations:

- a per-request suffix tree over the prompt (and what the request has emitted so far);
- a global suffix tree over the outputs of earlier requests, shared across requests.

Each step it matches the longest suffix of the committed tokens (the *pattern*, up to
``max_depth`` tokens, match length ``p``) in each source, and grows a speculation tree from the
matched node: every child is scored by its empirical probability ``count(child) / count(node)``
times its parent's, nodes are taken best-first while that probability is at least
``min_token_prob``, and at most ``MAX_SPEC = max_spec_factor * p + max_spec_offset`` nodes are
taken, so long matches speculate more. The source whose tree has the larger score (the sum of its
node probabilities, the expected number of accepted tokens) wins.

Data structures (see :mod:`specplug_suffix.kernels`): the per-request "tree" is answered by one
compiled pass over the history, which finds the same matched occurrences a suffix tree would; the
global cache is a fixed-size ring buffer of finished outputs with a bigram index. Memory is fixed
by ``max_cached_tokens``, and eviction is first-in, first-out by whole outputs (also capped by
``max_cached_requests``). Differences from the paper, deliberately: only the longest match length
is scored (the reference code scores every match length); global matches are at least 2 tokens;
frequencies come from the ``max_occurrences`` most recent occurrences.

Contents: :class:`SuffixOptions`, :class:`GlobalCache`, :class:`SuffixProposer`.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug.kit.slots import RequestSlots
from specplug_suffix import kernels

__all__ = ["GlobalCache", "SuffixOptions", "SuffixProposer"]


class SuffixOptions(MethodOptions):
    """Options of ``suffix``. Defaults follow the reference implementation (vLLM's ``suffix`` method)."""

    max_depth: int = Field(24, ge=2, le=1024, description="Longest pattern (suffix of the history) matched, in tokens.")
    max_spec_factor: float = Field(1.0, ge=0, description="MAX_SPEC = max_spec_factor * match length + max_spec_offset.")
    max_spec_offset: float = Field(0.0, description="Added to MAX_SPEC (may be negative).")
    min_token_prob: float = Field(0.1, ge=0, le=1, description="Drop draft nodes whose estimated probability is lower.")
    tree: bool = Field(True, description="Draft a token tree; false: only the most probable chain.")
    max_occurrences: int = Field(32, ge=1, le=4096, description="Most recent pattern occurrences counted per source.")
    max_candidates: int = Field(256, ge=1, le=1 << 20, description="Global cache: most indexed positions examined per step.")
    max_cached_requests: int = Field(
        10000, ge=0, description="Global cache: most earlier outputs kept (oldest evicted first); 0 disables the cache."
    )
    max_cached_tokens: int = Field(
        1 << 18, ge=64, le=1 << 28, description="Global cache capacity in tokens (fixed memory: about 20 bytes per token)."
    )
    max_active_requests: int = Field(
        4096, ge=1, description="Most live requests tracked; beyond it the least recently used one's state is dropped."
    )


class GlobalCache:
    """Earlier requests' outputs in a ring buffer of ``capacity`` tokens with a bigram index.

    ``add(tokens)`` appends one output (plus a separator). Positions older than ``write - capacity``
    are overwritten; ``max_requests`` also evicts whole outputs, oldest first, by raising the lower
    bound of valid positions. Memory never grows after construction.
    """

    def __init__(self, capacity: int, max_requests: int):
        self.capacity = capacity
        self.max_requests = max_requests
        buckets = 1 << max(4, int(2 * capacity - 1).bit_length())  # load factor <= 0.5
        self.ring = np.full(capacity, kernels.SEP, dtype=np.int32)  # [capacity]
        self.prev = np.full(capacity, -1, dtype=np.int64)  # [capacity]
        self.head = np.full(buckets, -1, dtype=np.int64)  # [buckets]
        self.write = 0  # absolute position of the next token
        self.valid_from = 0  # absolute position of the oldest output still cached
        self.outputs: deque[tuple[int, int]] = deque()  # (start, end) absolute positions, oldest first

    @property
    def lower(self) -> int:
        return max(self.valid_from, self.write - self.capacity)

    def add(self, tokens: np.ndarray) -> None:
        if self.max_requests == 0 or tokens.size == 0:
            return
        tokens = np.ascontiguousarray(tokens[-(self.capacity - 1) :], dtype=np.int32)
        start = self.write
        self.write = kernels.ring_insert(self.ring, self.prev, self.head, self.write, tokens)
        self.outputs.append((start, self.write))
        lower = self.write - self.capacity
        while self.outputs and (len(self.outputs) > self.max_requests or self.outputs[0][0] < lower):
            self.outputs.popleft()
        self.valid_from = self.outputs[0][0] if self.outputs else self.write

    def __len__(self) -> int:
        """Outputs currently cached."""
        return len(self.outputs)

    @property
    def num_tokens(self) -> int:
        return self.write - self.lower

    def nbytes(self) -> int:
        return self.ring.nbytes + self.prev.nbytes + self.head.nbytes


class SuffixProposer(BaseProposer):
    """SuffixDecoding over each request's history plus a global cache of earlier outputs.

    Lifecycle: ``start_request`` opens a request; ``propose`` follows its committed tokens; on
    ``finish_request`` its output (the tokens after the prompt) enters the global cache and its
    state is dropped. Requests never started are opened on first sight; at most
    ``max_active_requests`` are tracked (least recently used dropped without caching).

    Per-request state lives in arrays indexed by slot (:class:`~specplug.kit.slots.RequestSlots`), so
    ``propose_batch`` (the :class:`~specplug.protocols.BatchProposer` entry point) follows and drafts
    a whole batch in two compiled calls, and ``propose`` is the same code on one row.
    """

    stateless = False

    def __init__(self, options: SuffixOptions | None = None):
        self.options = options or SuffixOptions()
        o = self.options
        self.cache = GlobalCache(o.max_cached_tokens, o.max_cached_requests) if o.max_cached_requests else None
        self.slots = RequestSlots(o.max_active_requests, on_grow=self._grow)
        self._grow(self.slots.capacity)
        self.last_source: str | None = None  # "local" or "global": where the latest draft of ``propose`` came from

    @property
    def requests(self) -> dict[str, int]:
        """Live request ids (and their slots), in order of opening."""
        return self.slots.index

    def _grow(self, capacity: int, columns: int | None = None) -> None:
        """State for ``capacity`` slots and outputs of up to ``columns`` tokens (kept when larger)."""
        old = getattr(self, "state", None)
        columns = max(columns or 0, self._resp.shape[1] if old is not None else 256)
        state = np.zeros((capacity, 5), np.int64)  # [slots, 5]: see kernels.follow_rows
        resp = np.zeros((capacity, columns), np.int32)  # [slots, columns] each request's output so far
        if old is not None:
            state[: old.shape[0]] = old
            resp[: self._resp.shape[0], : self._resp.shape[1]] = self._resp
        self.state, self._resp = state, resp

    # -- lifecycle ------------------------------------------------------------------------------
    def _reset(self, slot: int, num_prompt: int, seen: int) -> None:
        self.state[slot] = (num_prompt, seen, -1, -1, 0)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        slot, _ = self.slots.open(request_id)  # an id started again forgets its old state, uncached
        self._reset(slot, int(np.asarray(prompt_ids).shape[0]), 0)

    def finish_request(self, request_id: str) -> None:
        slot = self.slots.release(request_id)
        if slot is not None and self.cache is not None and self.state[slot, kernels.RESP_LEN]:
            self.cache.add(self._resp[slot, : self.state[slot, kernels.RESP_LEN]].copy())

    def _follow(self, token_ids, lengths, max_tokens, request_ids, num_prompt_tokens) -> None:
        """Open unknown requests, then record every live row's new tokens (one compiled call)."""
        live = max_tokens > 0
        num_prompt_tokens = np.asarray(num_prompt_tokens, dtype=np.int64)

        def opened(row: int, slot: int) -> None:
            self._reset(slot, int(num_prompt_tokens[row]), -1)  # starts after its prompt

        slots = self.slots.slots_for(request_ids, live, opened)
        longest = int(lengths.max())
        if longest > self._resp.shape[1]:
            self._grow(self.slots.capacity, max(longest, 2 * self._resp.shape[1]))
        self.slots.clock = kernels.follow_rows(
            token_ids, lengths, max_tokens, slots, num_prompt_tokens, self.state, self._resp, self.slots.used,
            self.slots.clock,
        )

    def _ring(self):
        c = self.cache
        if c is None:
            return _NO_RING, _NO_PREV, _NO_PREV, 0, 0, False
        return c.ring, c.prev, c.head, c.write, c.lower, len(c) > 0

    # -- the step -------------------------------------------------------------------------------
    def propose(self, request: ProposalRequest) -> Draft:
        tokens = request.token_ids[None, :]  # [1, n]: the same state update as a one-row batch
        n = np.array([tokens.shape[1]], dtype=np.int64)
        self._follow(tokens, n, np.array([max(request.max_tokens, 1)]), [request.request_id], [request.num_prompt_tokens])
        o = self.options
        ring, prev, head, write, lower, use_ring = self._ring()
        tokens, parents, source = kernels.speculate(
            request.token_ids, ring, prev, head, write, lower, use_ring,
            o.max_depth, o.max_occurrences, o.max_candidates, o.max_spec_factor, o.max_spec_offset,
            request.max_tokens, o.min_token_prob, o.tree,
        )
        self.last_source = _SOURCES[source]
        if source == 0:
            return Draft.empty()
        return Draft(tokens, parents if o.tree else None)

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        """Every live row's draft (the tree's first chain) in ``out``; see :class:`~specplug.protocols.BatchProposer`."""
        if request_ids is None or num_prompt_tokens is None:
            raise ValueError("suffix keeps per-request state: propose_batch needs request_ids and num_prompt_tokens")
        lengths = np.asarray(lengths, dtype=np.int64)
        max_tokens = np.asarray(max_tokens, dtype=np.int64)
        self._follow(token_ids, lengths, max_tokens, request_ids, num_prompt_tokens)
        o = self.options
        counts = np.zeros(token_ids.shape[0], dtype=np.int32)
        kernels.speculate_rows(
            token_ids, lengths, max_tokens, *self._ring(), o.max_depth, o.max_occurrences, o.max_candidates,
            o.max_spec_factor, o.max_spec_offset, o.min_token_prob, o.tree, out, counts,
        )
        return counts


_SOURCES = (None, "local", "global")
_NO_RING = np.zeros(1, dtype=np.int32)
_NO_PREV = np.zeros(1, dtype=np.int64)
