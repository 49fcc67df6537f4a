"""Hydra's draft tree: a sparse tree of rank paths, each level drafted by the next head *given the
node's own path* (arXiv 2402.05109, Sec. 3: Hydra decodes with Medusa's tree attention over a
sparse candidate tree).

A path ``(r0, r1, r2)`` is "head 0's guess of rank r0; then head 1's guess of rank r1 *given that
token*; then head 2's of rank r2 given both". With Medusa's independent heads the tokens of a rank
are the same under every parent; with Hydra's they depend on the parent's path, so drafting runs one
batched head call per depth over the nodes that have children.

The default shape is Medusa's 63-node sparse tree (the paper's authors search trees with Medusa's
procedure; their code ships Medusa's format). Every prefix of the list is a tree; specplug takes the
first ``k`` paths the heads can fill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["SPARSE_TREE_63", "draft_tree", "tree_paths"]

#: Medusa's default sparse tree (``mc_sim_7b_63``: 63 nodes, 4 heads, top-10 per head); ordered so
#: that every prefix of the list is a tree.
SPARSE_TREE_63: tuple[tuple[int, ...], ...] = (
    (0,), (0, 0), (1,), (0, 1), (2,), (0, 0, 0), (1, 0), (0, 2), (3,), (0, 3), (4,), (0, 4), (2, 0),
    (0, 5), (0, 0, 1), (5,), (0, 6), (6,), (0, 7), (0, 1, 0), (1, 1), (7,), (0, 8), (0, 0, 2), (3, 0),
    (0, 9), (8,), (9,), (1, 0, 0), (0, 2, 0), (1, 2), (0, 0, 3), (4, 0), (2, 1), (0, 0, 4), (0, 0, 5),
    (0, 0, 0, 0), (0, 1, 1), (0, 0, 6), (0, 3, 0), (5, 0), (1, 3), (0, 0, 7), (0, 0, 8), (0, 0, 9),
    (6, 0), (0, 4, 0), (1, 4), (7, 0), (0, 1, 2), (2, 0, 0), (3, 1), (2, 2), (8, 0), (0, 5, 0), (1, 5),
    (1, 0, 1), (0, 2, 1), (9, 0), (0, 6, 0), (0, 0, 0, 1), (1, 6), (0, 7, 0),
)


def tree_paths(size: int, num_heads: int, top_k: int, choices: Sequence[Sequence[int]] = SPARSE_TREE_63) -> list[tuple[int, ...]]:
    """The first ``size`` paths of ``choices`` that ``num_heads`` heads with ``top_k`` guesses can fill
    (dropping a path drops its descendants, so the result stays a tree)."""
    kept: list[tuple[int, ...]] = []
    have: set[tuple[int, ...]] = set()
    for path in choices:
        if len(kept) == size:
            break
        path = tuple(int(r) for r in path)
        if not path or len(path) > num_heads or max(path) >= top_k or (len(path) > 1 and path[:-1] not in have):
            continue
        kept.append(path)
        have.add(path)
    return kept


def draft_tree(paths: Sequence[tuple[int, ...]], guesses: Callable[[int, list[tuple[int, ...]], int], np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, parents)`` of the tree whose node ``j`` is ``paths[j]`` (parents listed first).

    ``guesses(depth, prefixes, top_k)`` returns, for each drafted prefix (a tuple of token ids; ``()``
    is the root) whose children lie at ``depth + 1``, the ``top_k`` tokens the head of that depth
    ranks highest *given the prefix*: ``[len(prefixes), top_k]``. So the tokens a path's ranks pick
    depend on its parent's tokens, which is Hydra's sequential dependence (independent Medusa heads
    would return the same row for every prefix)."""
    index = {path: j for j, path in enumerate(paths)}
    tokens = np.empty(len(paths), dtype=np.int64)
    parents = np.array([index[p[:-1]] if len(p) > 1 else -1 for p in paths], dtype=np.int64)
    prefix_of: dict[tuple[int, ...], tuple[int, ...]] = {(): ()}  # rank path -> its tokens
    for depth in range(1, max((len(p) for p in paths), default=0) + 1):
        level = [p for p in paths if len(p) == depth]
        parent_paths = list(dict.fromkeys(p[:-1] for p in level))
        top_k = max(p[-1] for p in level) + 1
        ranked = guesses(depth - 1, [prefix_of[parent] for parent in parent_paths], top_k)
        row = {parent: r for r, parent in enumerate(parent_paths)}
        for p in level:
            tokens[index[p]] = ranked[row[p[:-1]], p[-1]]
            prefix_of[p] = prefix_of[p[:-1]] + (int(tokens[index[p]]),)
    return tokens, parents
