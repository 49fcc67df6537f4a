"""ADED: adaptive draft-verification with a tri-gram table and Monte Carlo tree search.

Liu, Lei, Zhang, Xu, "Adaptive Draft-Verification for Efficient Large Language Model Decoding"
(arXiv 2407.12021). Drafting needs no model and no training:

- a **tri-gram table** of next-token frequencies, optionally seeded from a corpus (option ``corpus``),
  that **adapts as decoding proceeds**: every committed token (prompts and outputs of every request)
  is counted after its context, so the table follows the model's own outputs;
- a **Monte Carlo tree search** over the table's continuations that balances exploring rarer
  continuations against exploiting frequent ones (PUCT rule), whose most visited nodes become the
  draft tree (:mod:`specplug_aded.kernels`).

The table is shared by every request (fixed memory, ``table_buckets`` rows); per request only the
number of tokens already counted is kept (a slot of :class:`~specplug.kit.slots.RequestSlots`), and
released in ``finish_request``. ``propose_batch`` runs every row in one compiled call
(:func:`specplug_aded.kernels.propose_rows`), in row order, as ``propose`` row by row would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from specplug.methods import MethodOptions
from specplug.kit.slots import RequestSlots
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug_aded import kernels

__all__ = ["AdedOptions", "AdedProposer", "load_corpus"]


def load_corpus(path: str) -> np.ndarray:
    """Corpus token ids from a .npy file or a REST datastore directory (its tokens.npy); clear errors."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "tokens.npy"
        if not p.exists():
            raise ValueError(f"corpus {path!r} is a directory without tokens.npy: pass a REST datastore or a .npy file of token ids")
    if not p.exists():
        raise ValueError(f"corpus {path!r} does not exist: pass a .npy file of token ids, or leave corpus unset")
    try:
        tokens = np.load(p)
    except (OSError, ValueError) as err:
        raise ValueError(f"corpus {path!r} is not a .npy array of token ids ({err})") from err
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"corpus {path!r} must be a 1-d integer array of token ids, got {tokens.dtype} {tokens.shape}")
    if not np.any(tokens >= 0):
        raise ValueError(f"corpus {path!r} is empty (no token ids): give it some text, or leave corpus unset")
    return np.ascontiguousarray(tokens, dtype=np.int32)


class AdedOptions(MethodOptions):
    """Options of ``aded``."""

    simulations: int = Field(16, ge=1, le=4096, description="MCTS simulations per step.")
    max_nodes: int = Field(16, ge=1, le=1024, description="Most draft tree nodes (vLLM takes the most visited path).")
    c_puct: float = Field(1.0, ge=0, description="Exploration weight of the PUCT rule.")
    width: int = Field(8, ge=1, le=64, description="Next tokens kept per context in the table.")
    table_buckets: int = Field(1 << 16, ge=64, le=1 << 24, description="Contexts the table holds (rounded up to a power of two).")
    corpus: str | None = Field(None, description="A .npy file of token ids (or a REST datastore) that seeds the table; None: start empty.")
    max_active_requests: int = Field(4096, ge=1, description="Most live requests tracked (least recently used dropped).")

    @field_validator("corpus")
    @classmethod
    def _corpus_exists(cls, value: str | None) -> str | None:
        if value is not None:
            load_corpus(value)
        return value


class AdedProposer(BaseProposer):
    """ADED (see the module docstring); also a :class:`~specplug.protocols.BatchProposer` (the most visited path)."""

    stateless = False

    def __init__(self, options: AdedOptions | None = None):
        self.options = o = options or AdedOptions()
        buckets = 1 << max(6, (o.table_buckets - 1).bit_length())
        self.keys, self.nexts, self.counts = kernels.new_table(buckets, o.width)
        if o.corpus is not None:
            corpus = load_corpus(o.corpus)
            for doc in np.split(corpus, np.flatnonzero(corpus < 0)):
                doc = np.ascontiguousarray(doc[doc >= 0])
                kernels.update(self.keys, self.nexts, self.counts, doc, 0, doc.shape[0])
        self.slots = RequestSlots(o.max_active_requests, on_grow=self._grow)
        self.seen = np.zeros(self.slots.capacity, np.int64)  # [slots] tokens of each live request already counted

    @property
    def requests(self) -> dict[str, int]:
        """Live request ids (and their slots)."""
        return self.slots.index

    def _grow(self, capacity: int) -> None:
        self.seen = np.concatenate([self.seen, np.zeros(capacity - self.seen.shape[0], np.int64)])

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        slot, _ = self.slots.open(request_id)
        self.seen[slot] = 0

    def finish_request(self, request_id: str) -> None:
        self.slots.release(request_id)

    def _slot(self, request_id: str, n: int) -> int:
        """The request's slot (opened when unknown); a reused id with a shorter text counts from 0 again."""
        slot = self.slots.get(request_id)
        if slot is None:
            slot, _ = self.slots.open(request_id)
            self.seen[slot] = 0
        else:
            self.slots.touch(slot)
        if self.seen[slot] > n:
            self.seen[slot] = 0
        return slot

    def propose(self, request: ProposalRequest) -> Draft:
        o = self.options
        tokens = np.ascontiguousarray(request.token_ids, dtype=np.int32)
        n = tokens.shape[0]
        slot = self._slot(request.request_id, n)
        kernels.update(self.keys, self.nexts, self.counts, tokens, int(self.seen[slot]), n)
        self.seen[slot] = n
        if n < 1 or request.max_tokens <= 0:
            return Draft.empty()
        size = max(o.max_nodes, 1)
        out_tokens, out_parents = np.empty(size, np.int64), np.empty(size, np.int64)
        a = int(tokens[n - 2]) if n >= 2 else -1
        count = kernels.search(self.keys, self.nexts, self.counts, a, int(tokens[n - 1]), o.simulations, request.max_tokens,
                               min(o.max_nodes, request.max_tokens * o.width), o.c_puct, out_tokens, out_parents)
        return Draft(out_tokens[:count], out_parents[:count])

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        """Every live row's most visited path (the first chain of ``propose``'s tree), all rows in one compiled call."""
        if request_ids is None:
            raise ValueError("aded counts each request's new tokens: propose_batch needs request_ids")
        o = self.options
        limits = np.asarray(max_tokens, dtype=np.int64)
        slots = self.slots.slots_for(request_ids, limits > 0, self._opened)
        counts = np.zeros(token_ids.shape[0], dtype=np.int32)
        self.slots.clock = kernels.propose_rows(
            self.keys, self.nexts, self.counts, self.seen, slots, token_ids, np.asarray(lengths, dtype=np.int64), limits,
            o.simulations, o.max_nodes, o.c_puct, out, counts, self.slots.used, self.slots.clock,
        )
        return counts

    def _opened(self, row: int, slot: int) -> None:
        self.seen[slot] = 0
