"""FALCON's custom decoding tree (arXiv 2412.12639, Sec. 3.3), torch-free.

A path ``(r1, r2, ..., rd)`` names the draft node reached by taking, at depth ``i``, the candidate of
rank ``r_i``. FALCON's drafter emits ``k`` depths per forward: depths ``b k + 1 .. b k + k`` all come
from ONE forward of block ``b``, so inside a block a node's candidates depend only on the path up to
the block's start (the forward's inputs), not on the ranks picked earlier in the same block;
across blocks the next forward is run once per distinct path that ends a block (its tokens and the
block's predicted features are the next forward's inputs). That is the tree FALCON's code builds
(``choices.py``: wide first levels, deeper paths mostly along rank 0), with several forwards.

:data:`FALCON_TREE` is our default shape in that style, ordered so every prefix of the list is a
tree; specplug takes the first ``size`` paths whose ranks fit ``top_k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["FALCON_TREE", "block_tree_paths", "draft_block_tree"]

FALCON_TREE: tuple[tuple[int, ...], ...] = (
    (0,), (1,), (0, 0), (2,), (0, 1), (1, 0), (3,), (0, 0, 0), (0, 2), (2, 0), (0, 0, 1), (0, 1, 0),
    (1, 0, 0), (0, 0, 0, 0), (4,), (0, 0, 0, 1), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 0, 0), (5,), (0, 3),
    (1, 1), (0, 0, 2), (0, 0, 0, 0, 1), (0, 0, 0, 1, 0), (0, 0, 0, 0, 0, 0), (2, 1), (3, 0), (0, 0, 0, 2),
    (0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, 0, 0), (6,), (0, 4), (1, 0, 1), (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 0, 0, 0), (7,), (0, 5), (1, 2), (2, 0, 0), (0, 0, 3), (0, 0, 0, 0, 0, 0, 0, 1),
)


def block_tree_paths(size: int, top_k: int, max_depth: int | None = None,
                     choices: Sequence[Sequence[int]] = FALCON_TREE) -> list[tuple[int, ...]]:
    """The first ``size`` paths of ``choices`` with ranks below ``top_k`` (and depth at most
    ``max_depth``); a dropped path drops its descendants, so the result stays a tree."""
    kept: list[tuple[int, ...]] = []
    have: set[tuple[int, ...]] = set()
    for path in choices:
        if len(kept) == size:
            break
        path = tuple(int(r) for r in path)
        if (not path or max(path) >= top_k or (max_depth is not None and len(path) > max_depth)
                or (len(path) > 1 and path[:-1] not in have)):
            continue
        kept.append(path)
        have.add(path)
    return kept


def draft_block_tree(paths: Sequence[tuple[int, ...]], block: int,
                     forward: Callable[[tuple[int, ...], tuple[int, ...], int], np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(tokens, parents, forwards)`` of the tree whose node ``j`` is ``paths[j]`` (parents first).

    ``forward(prefix_ranks, prefix_tokens, top)`` runs the drafter once for the block that follows
    ``prefix`` (a path whose length is a multiple of ``block``; ``()`` for the first block) and
    returns ``[block, top]``: the ``top`` best tokens at each of the block's ``block`` depths.
    It is called once per distinct block-ending prefix the tree extends; ``forwards`` counts the calls.
    """
    index = {path: j for j, path in enumerate(paths)}
    tokens = np.empty(len(paths), dtype=np.int64)
    parents = np.array([index[p[:-1]] if len(p) > 1 else -1 for p in paths], dtype=np.int64)
    tokens_of: dict[tuple[int, ...], tuple[int, ...]] = {(): ()}
    ranked: dict[tuple[int, ...], np.ndarray] = {}
    calls = 0
    for path in sorted(paths, key=len):
        depth = len(path)
        start = (depth - 1) // block * block  # the depth the path's block starts after
        prefix = path[:start]
        if prefix not in ranked:
            top = 1 + max(p[d] for p in paths if len(p) > start and p[:start] == prefix
                          for d in range(start, min(len(p), start + block)))
            ranked[prefix] = np.asarray(forward(prefix, tokens_of[prefix], top))
            calls += 1
        token = int(ranked[prefix][depth - 1 - start, path[-1]])
        tokens[index[path]] = token
        tokens_of[path] = tokens_of[path[:-1]] + (token,)
    return tokens, parents, calls
