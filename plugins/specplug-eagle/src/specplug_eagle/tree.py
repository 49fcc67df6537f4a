"""EAGLE-2's dynamic draft tree (Li et al., arXiv 2406.16858), engine-free.

The head is confident about some continuations and unsure about others, and its confidence tracks
the chance the target accepts a token. EAGLE-2 therefore grows the tree where the head is sure:

1. **Expand.** Start at the root. At each depth, the ``top_k`` most likely children of every node
   on the frontier become candidates, each scored by its *cumulative* draft log-probability (the
   sum of log p along its path, the head's estimate that the whole path is accepted). The ``top_k``
   best candidates of this depth form the next frontier. ``depth`` expansions in all.
2. **Rerank.** Of every candidate generated, keep the ``size`` with the highest cumulative score.
   A child never scores above its parent (log p <= 0), and ties keep the older node first, so the
   kept set always contains every kept node's parent: it is a tree.

The model is behind one callback, ``expand(frontier, token_ids, parents) -> (tokens, logprobs)``,
which returns the ``top_k`` best children (token ids and their log-probabilities,
``[len(frontier), top_k]``) of each frontier node (``-1`` is the root, other values index the nodes
generated so far, whose tokens and parents the two lists hold). A head needs one
forward per depth: the frontier's nodes run together, each under a tree mask.

Worked example (``top_k = 2``, ``depth = 2``, ``size = 3``): the root's two best children are
``a`` (p 0.6) and ``b`` (p 0.3); expanding both gives ``a -> c`` (0.9), ``a -> d`` (0.05),
``b -> e`` (0.5), ``b -> f`` (0.4). Cumulative probabilities: a 0.6, b 0.3, ac 0.54, ad 0.03,
be 0.15, bf 0.12. The three best are a, ac, b: the tree ``root -> a -> c`` plus ``root -> b``.
A chain of three would have spent its third node on a's second child; a fixed tree would have
spent nodes on ``b``'s children, which the head thinks unlikely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from specplug.kit.trees import Expansion, dynamic_tree

__all__ = ["DynamicTree", "grow_dynamic_tree"]

Expand = Callable[[list[int], list[int], list[int]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DynamicTree:
    """The kept nodes, parents before children: ``parents[i] = -1`` for the root's children."""

    token_ids: np.ndarray  # [n] int64
    parents: np.ndarray  # [n] int64
    scores: np.ndarray  # [n] float64: cumulative draft log-probability of each node's path
    generated: int  # candidates generated before the rerank
    expansions: int  # calls of expand (model forwards, the root's included)


class _CallbackDrafter:
    """An ``expand(frontier, tokens, parents) -> (tokens, logprobs)`` callback as the kit's top-k drafter."""

    def __init__(self, expand: Expand, top_k: int) -> None:
        self.callback, self.max_k, self.generated = expand, top_k, 0

    def expand(self, nodes: Sequence[int], token_ids: Sequence[int], parents: Sequence[int], k: int,
               with_dists: bool = False) -> Expansion:
        tokens, logp = self.callback(list(nodes), list(token_ids), list(parents))
        tokens = np.asarray(tokens, dtype=np.int64).reshape(len(nodes), -1)[:, :k]
        probs = np.exp(np.minimum(np.asarray(logp, dtype=np.float64).reshape(len(nodes), -1)[:, :k], 0.0))
        self.generated += tokens.size
        return Expansion(tokens, probs)


def grow_dynamic_tree(expand: Expand, top_k: int, depth: int, size: int) -> DynamicTree:
    """Expand ``depth`` times, ``top_k`` children per frontier node and ``top_k`` frontier nodes per
    depth, then keep the ``size`` best nodes by cumulative log-probability (see the module doc).
    The algorithm is the drafting kit's :func:`specplug.kit.trees.dynamic_tree`."""
    if top_k < 1 or depth < 1 or size < 1:
        raise ValueError(f"top_k, depth and size must be >= 1, got {top_k}, {depth}, {size}")
    drafter = _CallbackDrafter(expand, top_k)
    tree = dynamic_tree(drafter, top_k, depth, size)
    return DynamicTree(tree.token_ids, tree.parents, tree.scores, drafter.generated, tree.expansions)
