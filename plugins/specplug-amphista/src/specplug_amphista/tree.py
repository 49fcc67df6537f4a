"""Amphista's candidate tree (arXiv 2406.13170 drafts on Medusa's tree), torch-free.

Amphista's K heads guess K depths in ONE parallel call, none reading the tokens drafted before it, so
a node's children are head ``d``'s top candidates whatever the node: a path ``(r1, .., rd)`` is the
token of rank ``r_i`` of head ``i - 1`` at each depth. The shape is chosen as Medusa's authors choose
theirs, greedily by the expected number of accepted tokens: a path's value is the product over its
depths of the chance that its rank is right there, ``a_d (1 - a_d) ** r`` from the head's held-out
top-1 accuracy ``a_d`` (a geometric prior over ranks); the ``size`` most valuable paths form a tree,
since a path is always worth less than its parent and than its elder sibling.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

__all__ = ["expected_value_tree", "tree_tokens"]

DEFAULT_ACCURACY = 0.5


def expected_value_tree(size: int, num_heads: int, top_k: int, accuracy: Sequence[float | None] = ()) -> list[tuple[int, ...]]:
    """The ``size`` rank paths of highest value (parents before children)."""
    acc = [float(a) if a else DEFAULT_ACCURACY for a in list(accuracy)[:num_heads]]
    acc += [acc[-1] if acc else DEFAULT_ACCURACY] * (num_heads - len(acc))
    acc = [min(max(a, 1e-3), 0.999) for a in acc]

    def chance(depth: int, rank: int) -> float:
        return acc[depth] * (1 - acc[depth]) ** rank

    paths: list[tuple[int, ...]] = []
    frontier = [(-chance(0, 0), (0,))]
    while frontier and len(paths) < size:
        negative, path = heapq.heappop(frontier)
        paths.append(path)
        value = -negative
        if path[-1] + 1 < top_k:  # the next sibling
            sibling = path[:-1] + (path[-1] + 1,)
            heapq.heappush(frontier, (-value / chance(len(path) - 1, path[-1]) * chance(len(path) - 1, path[-1] + 1), sibling))
        if len(path) < num_heads:  # the first child
            heapq.heappush(frontier, (-value * chance(len(path), 0), path + (0,)))
    return paths


def tree_tokens(paths: Sequence[tuple[int, ...]], ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, parents)``: node ``j`` is ``paths[j]``; ``ranked [K, top]`` holds each head's best tokens."""
    index = {path: j for j, path in enumerate(paths)}
    tokens = np.array([ranked[len(p) - 1, p[-1]] for p in paths], dtype=np.int64)
    parents = np.array([index[p[:-1]] if len(p) > 1 else -1 for p in paths], dtype=np.int64)
    return tokens, parents
