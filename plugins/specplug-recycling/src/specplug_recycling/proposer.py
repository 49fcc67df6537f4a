"""The Token Recycling proposer: recycle the target's top-k candidates into an adjacency matrix.

Luo et al. ("Turning Trash into Treasure: Accelerating Inference of Large Language Models with Token
Recycling", arXiv 2408.08696) observe that the candidates the target ranks just below its chosen
token reappear later. Every verification forward yields the target's top-k after the root and
after every draft node, accepted or not; Token Recycling stores them in a matrix ``M[vocab, k]``
(``M[t]``: the latest top-k seen after token ``t``) and drafts, from the last committed token, a
static tree over ``M`` (see :mod:`specplug_recycling.tree`).

The matrix is shared by all requests of a proposer (the paper keeps it across queries, a "hot
start"); it is the only state, ``vocab * k`` int32 (1.5 MiB for SmolLM2's 49152 tokens and k = 8),
grown lazily up to the largest token id seen.

Worked example (k = 2)::

    >>> import numpy as np
    >>> m = AdjacencyMatrix(width=2)
    >>> m.update(np.array([5, 7]), np.array([[7, 9], [1, 2]]))   # after 5 the target ranks 7, 9; after 7: 1, 2
    >>> m.rows[[5, 7]].tolist()
    [[7, 9], [1, 2]]

A step from root 5 with the template ``[(-1, 0), (0, 0), (-1, 1)]`` then drafts ``5 -> 7 -> 1`` and
``5 -> 9``.

Engine-free: numpy only. Needs ``Need.target_topk``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback
from specplug_recycling.tree import build_template, expand

__all__ = ["AdjacencyMatrix", "RecyclingOptions", "RecyclingProposer"]


class RecyclingOptions(MethodOptions):
    """Options of ``recycling``."""

    width: int = Field(8, ge=1, le=64, description="Candidates kept per token (k of the adjacency matrix; the engine's top-k caps it).")
    tree_nodes: int = Field(32, ge=1, le=1024, description="Slots of the static tree template (the engine's k also clips each draft).")
    max_depth: int = Field(6, ge=1, le=64, description="Deepest level of the template.")


class AdjacencyMatrix:
    """``rows[t]``: the latest target top-k after token ``t`` (-1 where none seen yet)."""

    GROW = 1024

    def __init__(self, width: int):
        self.width = width
        self.rows = np.full((0, width), -1, dtype=np.int32)  # [capacity, width]

    def _ensure(self, max_token: int) -> None:
        if max_token < self.rows.shape[0]:
            return
        capacity = (max_token // self.GROW + 1) * self.GROW
        grown = np.full((capacity, self.width), -1, dtype=np.int32)
        grown[: self.rows.shape[0]] = self.rows
        self.rows = grown

    def update(self, tokens: np.ndarray, topk: np.ndarray) -> None:
        """Set ``rows[tokens[i]] = topk[i]`` (``tokens [n]``, ``topk [n, k']``; a token seen twice keeps its last row)."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)  # [n]
        topk = np.asarray(topk, dtype=np.int64)  # [n, k']
        if tokens.size == 0:
            return
        self._ensure(int(tokens.max()))
        k = min(self.width, topk.shape[1])
        block = np.full((tokens.size, self.width), -1, dtype=np.int32)  # [n, width]
        block[:, :k] = topk[:, :k]
        self.rows[tokens] = block


@lru_cache(maxsize=64)
def _template(num_nodes: int, width: int, max_depth: int) -> tuple[tuple[int, int], ...]:
    return tuple(build_template(num_nodes, width, max_depth))


class RecyclingProposer(BaseProposer):
    """Drafts the static tree over the adjacency matrix and refreshes the matrix from the target's top-k."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_topk})

    def __init__(self, options: RecyclingOptions | None = None):
        self.options = options or RecyclingOptions()
        self.matrix = AdjacencyMatrix(self.options.width)
        self._roots: dict[str, int] = {}  # request -> root token of the pending draft

    def propose(self, request: ProposalRequest) -> Draft:
        root = int(request.token_ids[-1])
        self._roots[request.request_id] = root
        budget = min(self.options.tree_nodes, request.max_tokens)
        if budget <= 0:
            return Draft.empty()
        o = self.options
        template = _template(o.tree_nodes, o.width, o.max_depth)[:budget]
        return expand(template, self.matrix.rows, root)

    def observe(self, feedback: StepFeedback) -> None:
        root = self._roots.get(feedback.request_id)
        if root is None or feedback.target_topk is None:
            return
        topk = np.asarray(feedback.target_topk)  # [num_nodes + 1, k]
        tokens = np.concatenate([[root], feedback.draft.token_ids]).astype(np.int64)  # [num_nodes + 1]
        self.matrix.update(tokens[: topk.shape[0]], topk)

    def finish_request(self, request_id: str) -> None:
        self._roots.pop(request_id, None)
