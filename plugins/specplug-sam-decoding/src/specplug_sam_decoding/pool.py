"""Every live request's dynamic automaton in two shared arrays, so a whole batch steps in one compiled call.

vLLM calls the drafter once per step for all its rows. With one :class:`~specplug_sam_decoding.automaton.Automaton`
object per request, each row costs a dictionary lookup and a compiled-function dispatch from Python
(about 4 us each at batch 32: more than the whole step of vLLM's own ngram kernel). Here the
automata live in one ``states`` and one ``edges`` array, each request in a region of its own (a slot
of :class:`~specplug.kit.slots.RequestSlots`), and :func:`step_rows` follows and drafts every row
of a batch in one call; Python only maps request ids to slots.

A region of ``u`` units holds a text of ``u - 2`` tokens: ``2u`` states and ``3u`` edges (an
automaton of ``n`` tokens has at most ``2n + 1`` states and ``3n`` edges). A region that must grow
moves to the end of the arrays (its old place becomes a hole); when the arrays are full, the live
regions are packed to the front (:meth:`AutomatonPool.compact`), and the arrays double only when that
is not enough. After packing, arrays four times larger than what is live shrink again, so memory
follows the live requests' text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from specplug.kit.slots import RequestSlots
from specplug_sam_decoding import automaton as sam

__all__ = ["AutomatonPool", "step_rows"]

MIN_TOKENS = 256  # the smallest region's text capacity


@njit(cache=True, nogil=True)
def _reset(states, meta):  # pragma: no cover - compiled
    meta[:] = 0
    states[0, sam.LEN], states[0, sam.LINK], states[0, sam.HEAD], states[0, sam.POS] = 0, -1, -1, -1
    meta[sam.NUM_STATES] = 1


@njit(cache=True, nogil=True)
def step_rows(states, edges, meta, base, units, slots, token_ids, lengths, limits, s_states, s_edges, corpus,
              use_static, min_match, static_margin, out, counts, sources, matches, used, clock):  # pragma: no cover
    """:func:`~specplug_sam_decoding.automaton.step` for every row with a slot and ``limits[row] > 0``.

    Row ``r`` is request ``slots[r]``, whose automaton is ``states[2 * base : 2 * (base + units)]``
    and ``edges[3 * base : 3 * (base + units)]`` with ``base, units = base[slot], units[slot]``, and
    whose matches are ``meta[slot]``; a request whose text is shorter than what it has read (a
    reused id) starts over. Writes ``out[r]``, ``counts[r]``, ``sources[r]`` and ``matches[r]``;
    advances ``used`` (the slots' clock) and returns the new clock.
    """
    for row in range(slots.shape[0]):
        slot = slots[row]
        if slot < 0 or limits[row] <= 0:
            continue
        b, u = base[slot], units[slot]
        st = states[2 * b : 2 * (b + u)]
        ed = edges[3 * b : 3 * (b + u)]
        m = meta[slot]
        n = lengths[row]
        if m[sam.SEEN] > n:
            _reset(st, m)
        count, source, match = sam.step(st, ed, m, token_ids[row], n, s_states, s_edges, corpus, use_static,
                                        min_match, static_margin, limits[row], out[row])
        counts[row], sources[row], matches[row] = count, source, match
        clock += 1
        used[slot] = clock
    return clock


class AutomatonPool:
    """The dynamic automata of at most ``max_requests`` live requests (least recently used evicted)."""

    def __init__(self, max_requests: int, units: int = 4 * (MIN_TOKENS + 2)):
        self.slots = RequestSlots(max_requests, on_grow=self._grow_slots)
        capacity = self.slots.capacity
        self.meta = np.zeros((capacity, sam.META_SIZE), np.int64)  # [slots, 8] matches and counters
        self.base = np.zeros(capacity, np.int64)  # [slots] region start, in units
        self.units = np.zeros(capacity, np.int64)  # [slots] region size in units (0: none)
        self._min_units = units
        self.states = np.empty((2 * units, 4), np.int32)  # [2 * pool units, 4]
        self.edges = np.empty((3 * units, 3), np.int32)  # [3 * pool units, 3]
        self.top = 0  # units in use from the front (live regions and holes)

    # -- requests -------------------------------------------------------------------------------
    @property
    def requests(self) -> dict[str, int]:
        """Live request ids and their slots."""
        return self.slots.index

    def open(self, request_id: str, num_tokens: int) -> int:
        """A fresh, empty automaton for ``request_id`` with room for ``num_tokens`` tokens; its slot."""
        slot, evicted = self.slots.open(request_id)
        for gone in evicted:
            self.units[gone] = 0
        self._fresh(slot, num_tokens)
        return slot

    def release(self, request_id: str) -> None:
        slot = self.slots.release(request_id)
        if slot is not None:
            self.units[slot] = 0  # a hole until the next packing

    def slots_for(self, request_ids: Sequence[str | None], live: np.ndarray, lengths: np.ndarray,
                  on_open: Callable[[int], None] | None = None) -> np.ndarray:
        """``[rows]`` slots of a batch (-1 where not live); unknown ids are opened, and every live row's
        region is grown to hold ``lengths[row]`` tokens. ``on_open(row)`` is called for each opened row."""

        def opened(row: int, slot: int) -> None:
            self.units[slot] = 0
            self._fresh(slot, int(lengths[row]))
            if on_open is not None:
                on_open(row)

        slots = self.slots.slots_for(request_ids, live, opened)
        short = np.flatnonzero((slots >= 0) & (lengths > self.units[slots] - 2))
        for row in short.tolist():
            self.reserve(int(slots[row]), int(lengths[row]))
        return slots

    # -- regions --------------------------------------------------------------------------------
    def _fresh(self, slot: int, num_tokens: int) -> None:
        need = max(MIN_TOKENS, 2 * num_tokens) + 2
        if self.units[slot] < need:
            self.units[slot] = 0
            self.base[slot] = self._allocate(need)
            self.units[slot] = need
        _reset(self.region(slot)[0], self.meta[slot])

    def reserve(self, slot: int, num_tokens: int) -> None:
        """Room in ``slot``'s region for ``num_tokens`` tokens (the region moves when it must grow)."""
        old = int(self.units[slot])
        if num_tokens <= old - 2:
            return
        need = max(num_tokens, 2 * (old - 2)) + 2
        self.units[slot] = 0  # free its place first, so packing may move it; copy what it held
        states, edges = self.states[2 * self.base[slot] : 2 * (self.base[slot] + old)].copy(), \
            self.edges[3 * self.base[slot] : 3 * (self.base[slot] + old)].copy()
        base = self._allocate(need)
        self.states[2 * base : 2 * base + states.shape[0]] = states
        self.edges[3 * base : 3 * base + edges.shape[0]] = edges
        self.base[slot], self.units[slot] = base, need

    def region(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """``(states, edges)`` views of ``slot``'s automaton."""
        b, u = int(self.base[slot]), int(self.units[slot])
        return self.states[2 * b : 2 * (b + u)], self.edges[3 * b : 3 * (b + u)]

    def _allocate(self, units: int) -> int:
        """The start of ``units`` free units at the end (packing or resizing the arrays first if needed)."""
        size = self.states.shape[0] // 2
        if self.top + units > size:
            self.compact()
            if self.top + units > size or 4 * (self.top + units) < size:
                self._resize(max(self._min_units, 2 * (self.top + units)))
        base = self.top
        self.top += units
        return base

    def compact(self) -> None:
        """Pack the live regions to the front, in place (each moves down, never over a region not yet moved)."""
        live = np.flatnonzero(self.units > 0)
        top = 0
        for slot in live[np.argsort(self.base[live], kind="stable")].tolist():
            b, u = int(self.base[slot]), int(self.units[slot])
            if b != top:
                self.states[2 * top : 2 * (top + u)] = self.states[2 * b : 2 * (b + u)]
                self.edges[3 * top : 3 * (top + u)] = self.edges[3 * b : 3 * (b + u)]
                self.base[slot] = top
            top += u
        self.top = top

    def _resize(self, units: int) -> None:
        states, edges = np.empty((2 * units, 4), np.int32), np.empty((3 * units, 3), np.int32)
        states[: 2 * self.top], edges[: 3 * self.top] = self.states[: 2 * self.top], self.edges[: 3 * self.top]
        self.states, self.edges = states, edges

    def _grow_slots(self, capacity: int) -> None:
        old = self.meta.shape[0]
        self.meta = np.concatenate([self.meta, np.zeros((capacity - old, sam.META_SIZE), np.int64)])
        self.base = np.concatenate([self.base, np.zeros(capacity - old, np.int64)])
        self.units = np.concatenate([self.units, np.zeros(capacity - old, np.int64)])

    def nbytes(self) -> int:
        return self.states.nbytes + self.edges.nbytes + self.meta.nbytes + self.base.nbytes + self.units.nbytes
