"""Medusa's sparse candidate tree (Cai et al., arXiv 2401.10774, Sec. 2.1.2), engine-free.

Medusa head ``i`` (``i = 0 .. K-1``) reads the target's last hidden state and predicts the token
``i + 1`` places after the root (the target's own LM head predicts the root itself). The heads are not
conditioned on each other's guesses, so every combination of their top guesses is a candidate
continuation: "head 0's best, then head 1's third best" is the path ``(0, 2)``. The paper builds a
*sparse* tree of such paths, adding at each step the path with the highest estimated acceptance
(head accuracies measured on a calibration set; the product along the path), and ships the result
for Vicuna-7B with 63 nodes (``mc_sim_7b_63`` in the authors' ``medusa_choices.py``). Because the list
was built greedily, every prefix of it is itself a tree (a path's parent always comes earlier), so
the first ``size`` paths are the paper's tree scaled to ``size`` nodes.

:func:`candidate_tree` turns per-head top-k token ids into a tree draft over those paths.

Worked example: heads' top tokens ``[[7, 8], [4, 5]]`` and paths ``(0,), (0, 0), (1,), (0, 1)`` give
the nodes 7 (child of the root), 4 (child of 7), 8 (child of the root), 5 (child of 7):
``token_ids = [7, 4, 8, 5]``, ``parents = [-1, 0, -1, 0]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MEDUSA_TREE_63", "candidate_tree", "tree_paths"]

#: The paper's default sparse tree (Medusa's ``mc_sim_7b_63``, tuned on Vicuna-7B with 4 heads, top-10
#: per head): each path lists the rank taken from head 0, head 1, ...; ordered so that every prefix of
#: the list is a tree.
MEDUSA_TREE_63: tuple[tuple[int, ...], ...] = (
    (0,), (0, 0), (1,), (0, 1), (2,), (0, 0, 0), (1, 0), (0, 2), (3,), (0, 3), (4,), (0, 4), (2, 0),
    (0, 5), (0, 0, 1), (5,), (0, 6), (6,), (0, 7), (0, 1, 0), (1, 1), (7,), (0, 8), (0, 0, 2), (3, 0),
    (0, 9), (8,), (9,), (1, 0, 0), (0, 2, 0), (1, 2), (0, 0, 3), (4, 0), (2, 1), (0, 0, 4), (0, 0, 5),
    (0, 0, 0, 0), (0, 1, 1), (0, 0, 6), (0, 3, 0), (5, 0), (1, 3), (0, 0, 7), (0, 0, 8), (0, 0, 9),
    (6, 0), (0, 4, 0), (1, 4), (7, 0), (0, 1, 2), (2, 0, 0), (3, 1), (2, 2), (8, 0), (0, 5, 0), (1, 5),
    (1, 0, 1), (0, 2, 1), (9, 0), (0, 6, 0), (0, 0, 0, 1), (1, 6), (0, 7, 0),
)


def tree_paths(size: int, num_heads: int, top_k: int, choices: Sequence[Sequence[int]] = MEDUSA_TREE_63) -> list[tuple[int, ...]]:
    """The first ``size`` paths of ``choices`` that ``num_heads`` heads with ``top_k`` guesses each can
    fill (a path no longer than the heads, ranks below ``top_k``). Dropping a path drops its
    descendants too, so the result stays a tree."""
    if size < 0 or num_heads < 1 or top_k < 1:
        raise ValueError(f"size must be >= 0 and num_heads, top_k >= 1; got {size}, {num_heads}, {top_k}")
    kept: list[tuple[int, ...]] = []
    have: set[tuple[int, ...]] = set()
    for path in choices:
        if len(kept) == size:
            break
        path = tuple(int(r) for r in path)
        if not path or len(path) > num_heads or max(path) >= top_k:
            continue
        if len(path) > 1 and path[:-1] not in have:
            continue
        kept.append(path)
        have.add(path)
    return kept


def candidate_tree(head_topk: np.ndarray, paths: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """``(token_ids, parents)`` of the tree whose node ``j`` is ``paths[j]``: its token is head
    ``len(path) - 1``'s guess of rank ``path[-1]`` (``head_topk[head, rank]``), its parent the node of
    ``path[:-1]`` (``-1`` for one-step paths). ``paths`` must list parents first."""
    topk = np.asarray(head_topk, dtype=np.int64)  # [K, top_k]
    index: dict[tuple[int, ...], int] = {}
    tokens = np.empty(len(paths), dtype=np.int64)
    parents = np.empty(len(paths), dtype=np.int64)
    for j, path in enumerate(paths):
        head, rank = len(path) - 1, path[-1]
        tokens[j] = topk[head, rank]
        parents[j] = -1 if head == 0 else index[tuple(path[:-1])]
        index[tuple(path)] = j
    return tokens, parents
