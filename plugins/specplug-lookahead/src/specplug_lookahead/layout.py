"""One Lookahead step as a single target forward: the inputs, their positions and the attention mask.

Lookahead decoding (Fu, Bailis, Stoica, Zhang, "Break the Sequential Dependency of LLM Inference
Using Lookahead Decoding", ICML 2024, arXiv 2402.02057) runs two branches in one forward:

- the **lookahead branch**: a 2D window of ``N - 1`` levels by ``W`` columns, the last ``N - 1``
  Jacobi iterates. The token at level ``j``, column ``i`` sits at position ``i + j`` after the root
  and sees the root, level 0's columns ``1..i`` and its own column's levels ``1..j``; that is one
  causal sequence, so its output is a Jacobi update of position ``i + j + 1``. Level 0's column 0 is
  the root itself (the last committed token). The last level's outputs become the next iterate,
  and each column read top to bottom plus its new output is an ``N``-gram for the pool.
- the **verification branch**: up to ``G`` pool n-grams that start with the root, merged into a trie
  and verified as a tree draft (each node sees the root and its ancestors).

Example (``W = 3``, ``N = 3``, one candidate ``(a, b)``): inputs in order
``[root, a, b, l0c1, l0c2, l1c0, l1c1, l1c2]`` at relative positions ``[0, 1, 2, 1, 2, 1, 2, 3]``; the
row of ``l1c2`` allows ``root, l0c1, l0c2, l1c2``.

Engine-free (numpy): :func:`build_layout` returns the mask as booleans; the decoder turns it into
the target's additive bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from specplug.protocols import Draft

__all__ = ["StepLayout", "build_layout", "ngram_trie"]


def ngram_trie(candidates: Sequence[Sequence[int]]) -> Draft:
    """Candidates merged into a trie, depth-first in candidate order (the first candidate is the first chain).

    >>> d = ngram_trie([(5, 6), (5, 7), (8,)])
    >>> d.token_ids.tolist(), d.parents.tolist()
    ([5, 6, 7, 8], [-1, 0, 0, -1])
    """
    children: list[dict[int, int]] = [{}]
    tokens: list[int] = [-1]
    for cand in candidates:
        node = 0
        for t in cand:
            t = int(t)
            if t not in children[node]:
                children[node][t] = len(tokens)
                children.append({})
                tokens.append(t)
            node = children[node][t]
    ids: list[int] = []
    parents: list[int] = []
    stack = [(c, -1) for c in reversed(list(children[0].values()))]
    while stack:
        node, parent = stack.pop()
        ids.append(tokens[node])
        parents.append(parent)
        me = len(ids) - 1
        stack.extend((c, me) for c in reversed(list(children[node].values())))
    if not ids:
        return Draft.empty()
    return Draft(np.asarray(ids, dtype=np.int64), np.asarray(parents, dtype=np.int64))


@dataclass(frozen=True)
class StepLayout:
    """The inputs of one Lookahead forward (index 0 is the root)."""

    tokens: np.ndarray  # [T] int64: root, verification trie nodes, then the lookahead window
    positions: np.ndarray  # [T] int64, relative to the root's position
    allow: np.ndarray  # [T, T] bool: row attends to column (besides the cached context)
    draft: Draft  # the verification trie; its node k is input 1 + k
    last_level: np.ndarray  # [W] input indices whose outputs are the next iterate (empty without a window)
    window_index: np.ndarray  # [N - 1, W] input index of each window cell (level 0, column 0 is the root)


def build_layout(root: int, candidates: Sequence[Sequence[int]], window: np.ndarray | None) -> StepLayout:
    """The layout for ``root``, verification ``candidates`` and a window ``[N - 1, W]`` (``None``: no lookahead branch)."""
    draft = ngram_trie(candidates)
    m = len(draft)
    tokens = [int(root)] + draft.token_ids.tolist()
    positions = [0] + draft.depths().tolist()
    levels, width = (0, 0) if window is None else window.shape
    index = np.zeros((levels, width), dtype=np.int64)
    for j in range(levels):
        for i in range(width):
            if j == 0 and i == 0:
                index[0, 0] = 0  # the root
                continue
            index[j, i] = len(tokens)
            tokens.append(int(window[j, i]))
            positions.append(i + j)
    t = len(tokens)
    allow = np.zeros((t, t), dtype=bool)
    allow[:, 0] = True  # everything sees the root
    parents = draft.parent_array()
    for k in range(m):  # a trie node sees itself and its ancestors
        row = 1 + k
        allow[row, row] = True
        if parents[k] >= 0:
            allow[row, 1 : 1 + m] |= allow[1 + parents[k], 1 : 1 + m]
    for j in range(levels):
        for i in range(width):
            row = index[j, i]
            allow[row, index[0, 1 : i + 1]] = True  # level 0, columns 1..i
            allow[row, index[1 : j + 1, i]] = True  # own column, levels 1..j
            allow[row, row] = True
    last = index[levels - 1] if levels else np.zeros(0, dtype=np.int64)
    return StepLayout(
        np.asarray(tokens, dtype=np.int64), np.asarray(positions, dtype=np.int64), allow, draft, last.copy(), index
    )
