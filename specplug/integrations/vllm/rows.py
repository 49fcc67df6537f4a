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

Limits (documented, not hidden): two live requests whose prompts end in the same ``PREFIX`` tokens
at the same prompt length are told apart by row only, so if vLLM swaps them between rows in the same step their synthetic ids
may swap too. Proposers stay correct (drafts are only guesses); per-request caches may lose some
warmth. Level 2 (real request ids, see ``plugin.py``) removes the guesswork.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["RowTracker", "Track"]

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

    def clear(self) -> list[Track]:
        """Forget every row; returns the tracks that were live."""
        live, self.rows = list(self.rows.values()), {}
        return live
