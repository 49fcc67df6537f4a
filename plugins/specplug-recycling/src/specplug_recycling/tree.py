"""The static draft tree of Token Recycling: a fixed template expanded over the adjacency matrix.

A *template* is a list of slots ``(parent_slot, rank)``: slot ``i`` holds the ``rank``-th candidate
of its parent's token (``parent_slot = -1``: of the root, the last committed token). The paper drafts
with one fixed, imbalanced tree found offline, wide near the root and deep along top-ranked paths;
here the template is built the same way from a prior on how often the rank-``r`` candidate is right
(``rank_weights``): best-first, keeping the ``num_nodes`` paths of highest prior probability. The
template is listed in decreasing prior, so any prefix of it is itself a tree (a child's prior is
never above its parent's): a step with budget ``b`` uses the first ``b`` slots.

Expansion is breadth-first over the matrix: a slot's token is ``matrix[parent_token, rank]``; a slot
whose parent is empty, or whose row has no candidate yet, stays empty with its subtree. The draft is
emitted depth-first, rank 0 first, so its first chain is the all-top-1 path (what engines without
tree attention verify).

Example::

    >>> import numpy as np
    >>> template = [(-1, 0), (0, 0), (-1, 1)]        # root -> top1 -> its top1, and root -> top2
    >>> matrix = np.array([[1, 2], [3, 0], [-1, -1], [-1, -1]])   # candidates after tokens 0..3
    >>> d = expand(template, matrix, root=0)
    >>> d.token_ids.tolist(), d.parents.tolist()
    ([1, 3, 2], [-1, 0, -1])
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from specplug.protocols import Draft

__all__ = ["DEFAULT_RANK_WEIGHTS", "build_template", "expand"]

#: Prior probability that the target's rank-r candidate is the next token (top-1 most often).
DEFAULT_RANK_WEIGHTS = (0.55, 0.14, 0.07, 0.045, 0.03, 0.022, 0.017, 0.013)


def build_template(num_nodes: int, width: int, max_depth: int, rank_weights: Sequence[float] = DEFAULT_RANK_WEIGHTS) -> list[tuple[int, int]]:
    """The ``num_nodes`` slots of highest prior, in decreasing prior (ties: shallower, lower rank first)."""
    weights = list(rank_weights)[:width]
    if len(weights) < width:
        weights += [weights[-1] * 0.7 ** (i + 1) for i in range(width - len(weights))]
    slots: list[tuple[int, int]] = []
    depth: list[int] = []
    counter = 0
    heap: list[tuple[float, int, int, int, int]] = []  # (-score, depth, order, parent_slot, rank)
    for r in range(width):
        heap.append((-weights[r], 1, counter, -1, r))
        counter += 1
    heapq.heapify(heap)
    while heap and len(slots) < num_nodes:
        neg, d, _, parent, rank = heapq.heappop(heap)
        slots.append((parent, rank))
        depth.append(d)
        me = len(slots) - 1
        if d < max_depth:
            for r in range(width):
                heapq.heappush(heap, (neg * weights[r], d + 1, counter, me, r))
                counter += 1
    return slots


def expand(template: Sequence[tuple[int, int]], matrix: np.ndarray, root: int) -> Draft:
    """The draft that ``template`` yields over ``matrix`` (``[rows, width]``, -1 = no candidate) from ``root``."""
    rows = matrix.shape[0]
    token: list[int] = []
    for parent, rank in template:
        parent_token = root if parent < 0 else token[parent]
        t = -1
        if 0 <= parent_token < rows and rank < matrix.shape[1]:
            t = int(matrix[parent_token, rank])
        token.append(t)
    children: dict[int, list[tuple[int, int]]] = {}
    for slot, (parent, rank) in enumerate(template):
        if token[slot] >= 0:
            children.setdefault(parent, []).append((rank, slot))
    ids: list[int] = []
    parents: list[int] = []
    stack = [(slot, -1) for _, slot in sorted(children.get(-1, []), reverse=True)]
    while stack:  # depth-first, rank 0 first (the stack pops the last pushed)
        slot, out_parent = stack.pop()
        ids.append(token[slot])
        parents.append(out_parent)
        me = len(ids) - 1
        stack.extend((child, me) for _, child in sorted(children.get(slot, []), reverse=True))
    if not ids:
        return Draft.empty()
    return Draft(np.asarray(ids, dtype=np.int64), np.asarray(parents, dtype=np.int64))
