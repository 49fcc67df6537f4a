"""Retrieved continuations -> a token trie, drafted as a tree.

REST merges the continuations it retrieves into a trie and keeps the most frequent prefixes. A
node's *count* is how many continuations pass through it, so a parent's count is at least its
child's: keeping the ``max_nodes`` nodes of highest count (ties: shallower first) keeps a tree that is
closed under parents.

The nodes are emitted in depth-first order with every node's children by descending count, so the
draft's first root-to-leaf chain (what engines without tree attention use) is the greedy
most-frequent path.

Example::

    >>> d = trie_draft([[1, 2, 3], [1, 2, 4], [1, 5], [6]], max_nodes=4)
    >>> d.token_ids.tolist(), d.parents.tolist()   # counts: 1:3, 2:2, the rest 1; 3 and 4 (depth 3) dropped
    ([1, 2, 5, 6], [-1, 0, 0, -1])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from specplug.protocols import Draft

__all__ = ["trie_draft"]


def trie_draft(continuations: Iterable[Sequence[int]], max_nodes: int) -> Draft:
    """A tree draft of at most ``max_nodes`` nodes from the trie of ``continuations``."""
    if max_nodes <= 0:
        return Draft.empty()
    # node 0 is the root; children[node] maps token -> child node
    children: list[dict[int, int]] = [{}]
    token: list[int] = [-1]
    parent: list[int] = [-1]
    depth: list[int] = [0]
    count: list[int] = [0]
    for cont in continuations:
        node = 0
        for t in cont:
            t = int(t)
            child = children[node].get(t)
            if child is None:
                child = len(token)
                children[node][t] = child
                children.append({})
                token.append(t)
                parent.append(node)
                depth.append(depth[node] + 1)
                count.append(0)
            count[child] += 1
            node = child
    if len(token) == 1:
        return Draft.empty()
    # keep the max_nodes most frequent nodes (shallower first on ties, then first seen)
    order = sorted(range(1, len(token)), key=lambda i: (-count[i], depth[i], i))
    keep = set(order[:max_nodes])
    ids: list[int] = []
    parents: list[int] = []
    stack = [(c, -1) for c in sorted(children[0].values(), key=lambda i: (count[i], -i)) if c in keep]
    while stack:  # depth-first, most frequent child first (the stack pops the last pushed)
        node, out_parent = stack.pop()
        index = len(ids)
        ids.append(token[node])
        parents.append(out_parent)
        kids = [c for c in children[node].values() if c in keep]
        kids.sort(key=lambda i: (count[i], -i))
        stack.extend((c, index) for c in kids)
    return Draft(np.asarray(ids, dtype=np.int64), np.asarray(parents, dtype=np.int64))
