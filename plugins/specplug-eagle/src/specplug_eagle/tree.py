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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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


def grow_dynamic_tree(expand: Expand, top_k: int, depth: int, size: int) -> DynamicTree:
    """Expand ``depth`` times, ``top_k`` children per frontier node and ``top_k`` frontier nodes per
    depth, then keep the ``size`` best nodes by cumulative log-probability (see the module doc)."""
    if top_k < 1 or depth < 1 or size < 1:
        raise ValueError(f"top_k, depth and size must be >= 1, got {top_k}, {depth}, {size}")
    tokens: list[int] = []
    parents: list[int] = []
    scores: list[float] = []
    frontier = [-1]
    expansions = 0
    for level in range(depth):
        child_tokens, child_logp = expand(list(frontier), tokens, parents)
        expansions += 1
        child_tokens = np.asarray(child_tokens, dtype=np.int64).reshape(len(frontier), -1)[:, :top_k]
        child_logp = np.asarray(child_logp, dtype=np.float64).reshape(len(frontier), -1)[:, :top_k]
        first = len(tokens)
        for row, parent in enumerate(frontier):
            base = 0.0 if parent < 0 else scores[parent]
            for token, logp in zip(child_tokens[row].tolist(), child_logp[row].tolist()):
                tokens.append(int(token))
                parents.append(int(parent))
                scores.append(base + min(float(logp), 0.0))  # never above the parent, even after rounding
        if level + 1 == depth:
            break
        new = np.arange(first, len(tokens))
        new_scores = np.asarray(scores[first:], dtype=np.float64)
        order = np.lexsort((new, -new_scores))  # best first; ties: older first
        frontier = [int(i) for i in new[order[:top_k]]]
    all_scores = np.asarray(scores, dtype=np.float64)
    index = np.arange(len(tokens))
    keep = np.sort(np.lexsort((index, -all_scores))[:size])  # the best `size`, back in creation order
    remap = {-1: -1}
    for new_index, old in enumerate(keep.tolist()):
        remap[old] = new_index
    kept_parents = [remap[parents[i]] for i in keep.tolist()]  # KeyError would mean a broken tree
    return DynamicTree(
        token_ids=np.asarray([tokens[i] for i in keep.tolist()], dtype=np.int64),
        parents=np.asarray(kept_parents, dtype=np.int64),
        scores=all_scores[keep],
        generated=len(tokens),
        expansions=expansions,
    )
