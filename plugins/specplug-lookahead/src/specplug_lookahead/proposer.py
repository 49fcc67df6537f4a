"""Lookahead's options, and the pool-driven proposer that any engine (vLLM included) can host.

The full method (:mod:`specplug_lookahead.decoder`) fills its n-gram pool from Jacobi iterations
computed inside the verification forward, which a :class:`~specplug.protocols.Proposer` cannot
reach. :class:`LookaheadPoolProposer` keeps the other half: a per-request pool of the request's own
``N``-grams (prompt and output), and verification of up to ``G`` of them that start with the root,
merged into a trie (a tree draft; the most recent n-gram is its first chain, which is what vLLM's
``custom_class`` path verifies).

Worked example::

    >>> import numpy as np
    >>> from specplug.protocols import ProposalRequest
    >>> p = LookaheadPoolProposer(LookaheadOptions(ngram=3, guesses=2))
    >>> p.start_request("r", np.array([4, 5, 6, 4, 5, 7]))
    >>> d = p.propose(ProposalRequest("r", np.array([4, 5, 6, 4, 5, 7, 4]), 6, max_tokens=8))
    >>> d.token_ids.tolist(), d.parents.tolist()      # after 4: "5 7" (most recent) and "5 6"
    ([5, 7, 6], [-1, 0, 0])

Engine-free: numpy only.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest
from specplug_lookahead.layout import ngram_trie
from specplug_lookahead.pool import NGramPool

__all__ = ["LookaheadOptions", "LookaheadPoolProposer"]


class LookaheadOptions(MethodOptions):
    """Options of ``lookahead`` (the paper's W, N, G)."""

    window: int = Field(5, ge=0, le=64, description="W: columns of the Jacobi window (one-forward decoder only; 0 = no lookahead branch).")
    ngram: int = Field(4, ge=2, le=16, description="N: n-gram size; the window has N - 1 levels and candidates N - 1 tokens.")
    guesses: int = Field(5, ge=1, le=64, description="G: most n-grams verified per step.")
    pool_from_context: bool = Field(
        True, description="Also pool the request's own n-grams (prompt and output); the pool-driven proposer always does."
    )


class LookaheadPoolProposer(BaseProposer):
    """Drafts the trie of up to ``G`` pooled n-grams that start with the root."""

    def __init__(self, options: LookaheadOptions | None = None):
        self.options = options or LookaheadOptions()
        self._pools: dict[str, tuple[NGramPool, int]] = {}  # request -> (pool, tokens indexed so far)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self._pools[request_id] = (NGramPool(self.options.ngram, self.options.guesses), 0)

    def propose(self, request: ProposalRequest) -> Draft:
        pool, indexed = self._pools.get(request.request_id) or (NGramPool(self.options.ngram, self.options.guesses), 0)
        tokens = request.token_ids
        if indexed > len(tokens):  # a shorter history than seen: start over
            pool, indexed = NGramPool(self.options.ngram, self.options.guesses), 0
        pool.add_sequence(tokens[indexed:])  # only the n-grams not pooled yet
        self._pools[request.request_id] = (pool, max(indexed, len(tokens) - self.options.ngram + 1))
        if request.max_tokens <= 0:
            return Draft.empty()
        root = int(tokens[-1])
        candidates = [c[: request.max_tokens] for c in pool.candidates(root)]
        return ngram_trie(candidates).truncated(request.max_tokens)

    def finish_request(self, request_id: str) -> None:
        self._pools.pop(request_id, None)
