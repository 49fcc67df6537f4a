"""Request ids mapped to dense integer slots, for proposers that keep per-request state in arrays.

A proposer whose state lives in numpy arrays indexed by slot can follow a whole batch of requests in
one compiled call (:class:`~specplug.protocols.BatchProposer`): Python only turns the batch's request
ids into an array of slots. :class:`RequestSlots` hands out the slots, reuses freed ones, and keeps
at most ``max_requests`` live, evicting the least recently used one (its ``used`` clock, which the
proposer's kernels advance, see :meth:`RequestSlots.slots_for`).

Engine-free: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["RequestSlots"]


class RequestSlots:
    """Live request ids -> slots ``0..capacity-1``, least recently used evicted past ``max_requests``.

    ``on_grow(capacity)`` is called whenever the capacity grows, so the owner can grow its state
    arrays to match. ``used[slot]`` is the clock of the slot's last use: :meth:`touch` advances it
    from Python; compiled batch kernels take ``used`` and ``clock`` and return the new clock.

    >>> slots = RequestSlots(2)
    >>> [slots.open(r)[0] for r in ("a", "b")]
    [0, 1]
    >>> slots.touch(0)  # "a" is used again, so "b" is now the least recently used
    >>> slots.open("c")  # slot 1 is freed by evicting "b" and handed to "c"
    (1, [1])
    >>> list(slots)
    ['a', 'c']
    """

    def __init__(self, max_requests: int, on_grow: Callable[[int], None] | None = None, capacity: int = 8):
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests}")
        self.max_requests = max_requests
        self.index: dict[str, int] = {}  # live request id -> slot, in order of opening
        self.used = np.zeros(capacity, dtype=np.int64)  # [capacity] clock of each slot's last use
        self.clock = 0
        self._free = list(range(capacity - 1, -1, -1))  # popped from the end: lowest slot first
        self._on_grow = on_grow

    @property
    def capacity(self) -> int:
        return int(self.used.shape[0])

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self.index

    def get(self, request_id: str) -> int | None:
        return self.index.get(request_id)

    def touch(self, slot: int) -> None:
        self.clock += 1
        self.used[slot] = self.clock

    def open(self, request_id: str) -> tuple[int, list[int]]:
        """A fresh slot for ``request_id`` (its old slot, if any, is released first).

        :returns: ``(slot, evicted)``: the new slot and the slots of requests evicted to keep at most
            ``max_requests`` live (their state is to be dropped; one of them may be ``slot`` itself,
            handed out again).
        """
        self.release(request_id)
        evicted: list[int] = []
        while len(self.index) >= self.max_requests:
            victim = min(self.index, key=lambda r: self.used[self.index[r]])
            evicted.append(self.index.pop(victim))
            self._free.append(evicted[-1])
        if not self._free:
            old = self.capacity
            self.used = np.concatenate([self.used, np.zeros(old, dtype=np.int64)])
            self._free = list(range(2 * old - 1, old - 1, -1))
            if self._on_grow is not None:
                self._on_grow(2 * old)
        slot = self._free.pop()
        self.index[request_id] = slot
        self.touch(slot)
        return slot, evicted

    def release(self, request_id: str) -> int | None:
        """Forget ``request_id``; returns its slot (now free), or ``None`` when it was not live."""
        slot = self.index.pop(request_id, None)
        if slot is not None:
            self._free.append(slot)
        return slot

    def slots_for(self, request_ids: Sequence[str | None], live: np.ndarray, on_open: Callable[[int, int], None]) -> np.ndarray:
        """``[rows]`` int64 slots of a batch's request ids (-1 for rows not ``live``).

        Unknown ids of live rows are opened; ``on_open(row, slot)`` is called for each, so the owner
        can initialise the slot's state. The caller's kernel advances ``used`` for the rows it follows.
        """
        if int(np.count_nonzero(live)) > self.max_requests:
            raise ValueError(
                f"{int(np.count_nonzero(live))} live rows but at most {self.max_requests} requests are tracked: "
                "raise the method's request limit option to at least the engine's max_num_seqs"
            )
        get = self.index.get
        slots = [get(r, -1) if r is not None else -1 for r in request_ids]
        for row, slot in enumerate(slots):
            if slot < 0 and live[row]:
                if request_ids[row] is None:
                    raise ValueError(f"row {row} is live but has no request id; a stateful proposer needs one per row")
                slots[row], _ = self.open(request_ids[row])
                on_open(row, slots[row])
        return np.array(slots, dtype=np.int64)
