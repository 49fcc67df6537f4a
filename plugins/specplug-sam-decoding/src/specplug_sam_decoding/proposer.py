"""SAM-Decoding: drafts from suffix automata over the request's text and over a static corpus.

Hu, Wang, Zhang, Li, Chen, "SAM Decoding: Speculative Decoding via Suffix Automaton" (arXiv
2411.10666, ACL 2025). Each step the longest suffix of the committed text is matched, in amortised
constant time (:mod:`specplug_sam_decoding.automaton`), in two automata:

- the *dynamic* automaton of the request's own text (prompt and output), extended as tokens commit;
- the *static* automaton of a corpus (option ``corpus``), built once when the method is built.

The draft is the continuation of the dynamic match unless the static match is longer by more than
``static_margin`` tokens; when both matches are shorter than ``min_match``... the auxiliary drafter
(option ``auxiliary``: any registered method that needs only token ids, built by id) drafts instead,
as the paper falls back to Token Recycling or EAGLE when the automata have nothing long enough.

Per-request state: one automaton (at most ``2n`` states and ``3n`` edges of int32 for ``n`` tokens),
a region of the shared arrays of an :class:`~specplug_sam_decoding.pool.AutomatonPool`, released in
``finish_request``; at most ``max_active_requests`` are kept (the least recently used is dropped first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug_sam_decoding import automaton as sam
from specplug_sam_decoding.pool import AutomatonPool, step_rows

__all__ = ["SamOptions", "SamProposer", "load_corpus"]

_EMPTY_CORPUS = np.zeros(1, dtype=np.int32) - 1
_NO_STATES = np.zeros((1, 4), dtype=np.int32)
_NO_EDGES = np.zeros((1, 3), dtype=np.int32)


class SamOptions(MethodOptions):
    """Options of ``sam_decoding``."""

    corpus: str | None = Field(
        None,
        description="Static corpus: a REST datastore directory (its tokens.npy, from 'specplug rest build-datastore') "
        "or a .npy file of int token ids (-1 between documents). None: the dynamic automaton only.",
    )
    min_match: int = Field(1, ge=1, le=1024, description="Shortest match an automaton drafts from; shorter: the auxiliary drafter.")
    static_margin: int = Field(
        0, ge=0, le=1024, description="The static match wins only when longer than the dynamic one by more than this."
    )
    num_pred_tokens: int | None = Field(None, ge=1, description="Draft at most this many tokens; None: the engine's k.")
    auxiliary: str | None = Field(
        None, description="Id of a registered token-only method that drafts when both matches are shorter than min_match."
    )
    auxiliary_options: dict = Field(default_factory=dict, description="Options of the auxiliary method.")
    max_active_requests: int = Field(4096, ge=1, description="Most live requests tracked (least recently used dropped).")

    @field_validator("corpus")
    @classmethod
    def _corpus_exists(cls, value: str | None) -> str | None:
        if value is not None:
            load_corpus(value)  # raises naming the problem
        return value


def load_corpus(path: str) -> np.ndarray:
    """The corpus token ids from a REST datastore directory or a ``.npy`` file; clear errors otherwise."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "tokens.npy"
        if not p.exists():
            raise ValueError(f"corpus {path!r} is a directory without tokens.npy: pass a REST datastore "
                             "(specplug rest build-datastore) or a .npy file of token ids")
    if not p.exists():
        raise ValueError(f"corpus {path!r} does not exist: pass a REST datastore directory or a .npy file of token ids")
    try:
        tokens = np.load(p, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise ValueError(f"corpus {path!r} is not a .npy array of token ids ({err})") from err
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"corpus {path!r} must be a 1-d integer array of token ids, got {tokens.dtype} {tokens.shape}")
    if int(np.count_nonzero(np.asarray(tokens) >= 0)) == 0:
        raise ValueError(f"corpus {path!r} is empty (no token ids): build it from some documents, or leave corpus unset")
    return np.ascontiguousarray(tokens, dtype=np.int32)


_STATIC_CACHE: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _static(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(corpus, states, edges)``, built once per process and path."""
    key = str(Path(path).expanduser().resolve())
    if key not in _STATIC_CACHE:
        corpus = load_corpus(path)
        _STATIC_CACHE[key] = (corpus, *sam.build_static(corpus))
    return _STATIC_CACHE[key]


class SamProposer(BaseProposer):
    """SAM-Decoding over the request's text and an optional static corpus (see the module docstring).

    Also a :class:`~specplug.protocols.BatchProposer`: ``propose_batch`` follows and drafts every row in
    one compiled call over the automata of an :class:`~specplug_sam_decoding.pool.AutomatonPool`
    (``propose`` is the same call on one row), so the step costs no Python per row.
    """

    stateless = False

    def __init__(self, options: SamOptions | None = None):
        self.options = o = options or SamOptions()
        if o.corpus is not None:
            self.corpus, self.static_states, self.static_edges = _static(o.corpus)
        else:
            self.corpus, self.static_states, self.static_edges = _EMPTY_CORPUS, _NO_STATES, _NO_EDGES
        self.use_static = o.corpus is not None
        self.pool = AutomatonPool(o.max_active_requests)
        self.auxiliary = None
        if o.auxiliary is not None:
            from specplug.registry import get_registry

            spec = get_registry().method(o.auxiliary)
            if spec.needs:
                raise ValueError(f"auxiliary {o.auxiliary!r} needs {sorted(spec.needs)}; sam_decoding's auxiliary must "
                                 "need only token ids (for example pld or anpd)")
            self.auxiliary = spec.build(o.auxiliary_options)
        self.last_source: str | None = None  # "dynamic", "static", "auxiliary" or None: where the latest draft came from
        self.last_match = 0
        self._rows = 0
        self._grow_rows(8)

    @property
    def requests(self) -> dict[str, int]:
        """Live request ids (and their automata's slots)."""
        return self.pool.requests

    def _grow_rows(self, rows: int) -> None:
        self._rows = rows
        self._counts = np.zeros(rows, np.int32)
        self._sources = np.zeros(rows, np.int64)
        self._matches = np.zeros(rows, np.int64)

    # -- lifecycle ------------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.pool.open(request_id, int(np.asarray(prompt_ids).shape[0]))
        if self.auxiliary is not None:
            self.auxiliary.start_request(request_id, prompt_ids)

    def finish_request(self, request_id: str) -> None:
        self.pool.release(request_id)
        if self.auxiliary is not None:
            self.auxiliary.finish_request(request_id)

    # -- the step -------------------------------------------------------------------------------
    def _limits(self, max_tokens: np.ndarray) -> np.ndarray:
        cap = self.options.num_pred_tokens
        return max_tokens if cap is None else np.minimum(max_tokens, cap)

    def _step_rows(self, token_ids, lengths, limits, request_ids, out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(counts, sources, matches)`` of every row (views, valid until the next call)."""
        rows = token_ids.shape[0]
        if rows > self._rows:
            self._grow_rows(max(rows, 2 * self._rows))
        counts, sources, matches = self._counts[:rows], self._sources[:rows], self._matches[:rows]
        counts.fill(0)
        sources.fill(0)
        pool = self.pool
        slots = pool.slots_for(request_ids, limits > 0, lengths)
        pool.slots.clock = step_rows(
            pool.states, pool.edges, pool.meta, pool.base, pool.units, slots, token_ids, lengths, limits,
            self.static_states, self.static_edges, self.corpus, self.use_static, self.options.min_match,
            self.options.static_margin, out, counts, sources, matches, pool.slots.used, pool.slots.clock,
        )
        return counts, sources, matches

    def propose(self, request: ProposalRequest) -> Draft:
        tokens = np.ascontiguousarray(request.token_ids, dtype=np.int32)[None, :]  # [1, n]: a one-row batch
        limits = self._limits(np.array([request.max_tokens], dtype=np.int64))
        out = np.empty((1, max(int(limits[0]), 1)), dtype=np.int32)
        # a row with nothing to draft still reads its tokens (limit 0 skips the row, so ask for 1 and drop it)
        ask = np.maximum(limits, 1)
        counts, sources, matches = self._step_rows(tokens, np.array([tokens.shape[1]], dtype=np.int64), ask,
                                                   [request.request_id], out)
        count = int(counts[0]) if limits[0] > 0 else 0
        source = int(sources[0]) if limits[0] > 0 else 0
        self.last_match = int(matches[0])
        if count == 0 and source == 0 and self.auxiliary is not None and limits[0] > 0:
            self.last_source = "auxiliary"
            return first_chain_of(self.auxiliary.propose(request), int(limits[0]))
        self.last_source = _SOURCES[source]
        return Draft.chain(out[0, :count].astype(np.int64))

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        if request_ids is None:
            raise ValueError("sam_decoding keeps per-request state: propose_batch needs request_ids")
        limits = self._limits(np.asarray(max_tokens, dtype=np.int64))
        lengths = np.asarray(lengths, dtype=np.int64)
        counts, sources, _ = self._step_rows(token_ids, lengths, limits, request_ids, out)
        counts = counts.copy()
        if self.auxiliary is not None:  # rows neither automaton drafted for: the auxiliary drafter, row by row
            for row in np.flatnonzero((sources == 0) & (limits > 0)).tolist():
                n, limit = int(lengths[row]), int(limits[row])
                chain = first_chain_of(self.auxiliary.propose(ProposalRequest(
                    request_ids[row], np.asarray(token_ids[row, :n], dtype=np.int64), int(num_prompt_tokens[row]), limit)), limit)
                counts[row] = len(chain)
                out[row, : counts[row]] = chain.token_ids
        return counts


def first_chain_of(draft: Draft, limit: int) -> Draft:
    """The first root-to-leaf chain of a draft (a chain itself when it is one), at most ``limit`` tokens."""
    if draft.is_tree:
        parents, chain, node = draft.parents, [], -1
        for i in range(len(draft)):
            if parents[i] == node:
                chain.append(int(draft.token_ids[i]))
                node = i
        draft = Draft.chain(chain)
    return draft.truncated(limit)


_SOURCES = (None, "dynamic", "static")
