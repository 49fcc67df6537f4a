"""The REST proposer: retrieve continuations of the context's longest matching suffix, draft a trie.

Engine-free: numpy only. The datastore is opened (memory-mapped) once per proposer and shared by all
requests; a proposer keeps no per-request state.

Worked example of the kernel :func:`retrieve`, on a datastore of two documents::

    >>> import numpy as np
    >>> from specplug_rest.suffix_array import build_suffix_array
    >>> tokens = np.array([1, 2, 3, 4, -1, 1, 2, 3, 5])   # "1 2 3 4" and "1 2 3 5", -1 separates
    >>> sa = build_suffix_array(tokens)
    >>> retrieve(tokens, sa, context=[9, 2, 3], max_suffix_len=16, min_suffix_len=1,
    ...          num_candidates=8, max_depth=4)
    (2, [[4], [5]])

The context's last three tokens ``9 2 3`` never occur, ``2 3`` does (twice); each match continues
with one token before its document ends. :func:`~specplug_rest.trie.trie_draft` then turns the
continuations into a tree draft ``4`` and ``5``, both children of the root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug_rest.datastore import Datastore
from specplug_rest.suffix_array import find_range
from specplug_rest.trie import trie_draft

__all__ = ["RestOptions", "RestProposer", "retrieve"]


class RestOptions(MethodOptions):
    """Options of ``rest``."""

    datastore: str = Field(description="Path of the datastore directory built by 'specplug rest build-datastore'.")
    max_suffix_len: int = Field(16, ge=1, le=256, description="Longest context suffix searched first.")
    min_suffix_len: int = Field(2, ge=1, le=256, description="Shortest context suffix searched before giving up.")
    num_candidates: int = Field(64, ge=1, le=100_000, description="Most continuations retrieved per step (spread evenly over all matches).")
    max_depth: int = Field(8, ge=1, le=256, description="Tokens taken from each continuation (the trie's depth).")
    max_nodes: int = Field(32, ge=1, le=4096, description="Most trie nodes drafted per step (also clipped by the engine's k).")
    tokenizer_fingerprint: str | None = Field(
        None, description="The model tokenizer's fingerprint ('sha256:...'); when given, a datastore built for another tokenizer is refused."
    )
    model: str | None = Field(
        None, description="The run's --model; when given, its tokenizer is loaded once and checked against the datastore's."
    )

    @model_validator(mode="after")
    def _check_lengths(self) -> RestOptions:
        if self.min_suffix_len > self.max_suffix_len:
            raise ValueError(f"min_suffix_len ({self.min_suffix_len}) must be <= max_suffix_len ({self.max_suffix_len})")
        return self


def retrieve(
    tokens: np.ndarray,
    sa: np.ndarray,
    context: Sequence[int] | np.ndarray,
    max_suffix_len: int,
    min_suffix_len: int,
    num_candidates: int,
    max_depth: int,
) -> tuple[int, list[list[int]]]:
    """``(match_len, continuations)`` for the longest suffix of ``context`` found in the datastore.

    Tries suffix lengths from ``max_suffix_len`` down to ``min_suffix_len`` and stops at the first
    one that occurs. When it occurs more than ``num_candidates`` times, the continuations are taken
    at evenly spaced suffix-array positions, so frequent continuations keep their share. Each
    continuation is at most ``max_depth`` tokens and stops at a document boundary. ``(0, [])`` when
    nothing matches.
    """
    context = np.asarray(context).reshape(-1)
    n = int(sa.shape[0])
    longest = min(max_suffix_len, context.size)
    for length in range(longest, min_suffix_len - 1, -1):
        lo, hi = find_range(tokens, sa, context[context.size - length :].tolist())
        if hi <= lo:
            continue
        count = hi - lo
        if count > num_candidates:
            picks = lo + (np.arange(num_candidates, dtype=np.int64) * count) // num_candidates  # [c]
        else:
            picks = np.arange(lo, hi, dtype=np.int64)  # [c]
        starts = np.asarray(sa[picks], dtype=np.int64) + length  # [c] first token after the match
        grid = starts[:, None] + np.arange(max_depth, dtype=np.int64)[None, :]  # [c, depth]
        inside = grid < n
        values = np.where(inside, np.asarray(tokens[np.minimum(grid, n - 1)], dtype=np.int64), -1)  # [c, depth]
        ends = np.where((values < 0).any(axis=1), np.argmax(values < 0, axis=1), max_depth)  # [c]
        conts = [row[:end].tolist() for row, end in zip(values, ends) if end > 0]
        if conts:
            return length, conts
    return 0, []


class RestProposer(BaseProposer):
    """Drafts a token trie of retrieved continuations each step (no per-request state)."""

    def __init__(self, datastore: Datastore, options: RestOptions):
        self.datastore = datastore
        self.options = options
        self._tokens = np.asarray(datastore.tokens)  # plain ndarray views of the memory maps: faster slicing
        self._sa = np.asarray(datastore.suffix_array)
        self.last_match_len = 0  # for diagnostics and tests

    @classmethod
    def from_options(cls, options: RestOptions, fingerprint: dict[str, Any] | None = None) -> RestProposer:
        """Open the datastore and check its tokenizer (``fingerprint`` overrides the options' check)."""
        store = Datastore.open(options.datastore)
        if fingerprint is not None:
            store.check_tokenizer(fingerprint["fingerprint"], fingerprint.get("name"))
        elif options.tokenizer_fingerprint is not None:
            store.check_tokenizer(options.tokenizer_fingerprint)
        return cls(store, options)

    def propose(self, request: ProposalRequest) -> Draft:
        o = self.options
        budget = min(o.max_nodes, request.max_tokens)
        if budget <= 0:
            return Draft.empty()
        self.last_match_len, conts = retrieve(
            self._tokens, self._sa, request.token_ids, o.max_suffix_len, o.min_suffix_len, o.num_candidates,
            min(o.max_depth, budget),
        )
        return trie_draft(conts, budget)
