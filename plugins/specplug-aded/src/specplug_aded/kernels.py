"""ADED's compiled parts: the adaptive tri-gram table and the Monte Carlo tree search over it (numba).

**Table.** An open-addressing hash table from a context to its ``M`` most frequent next tokens with
counts. Two kinds of context share it: the tri-gram context ``(a, b)`` (the two tokens before) and the
bigram context ``(-1, b)``, used when the tri-gram context was never seen. Every committed token
``c`` after ``(a, b)`` increments both; a full row replaces its least counted entry; a context whose
probe sequence (``PROBES`` slots) is full replaces the least counted of those rows. Memory is fixed
when the table is built.

**Search.** ``S`` simulations from the root (the last two committed tokens as context). Each walks
down by the PUCT rule ``Q(c) + c_puct * P(c) * sqrt(N(parent)) / (1 + N(c))``, with ``P`` the table's
relative frequency, expands the first unexpanded node it meets (its children: the table's next tokens
of its context), and backs up the rollout's value: the expected number of accepted tokens of the path,
``sum_d prod_{j<=d} P(node_j)``. The draft is the ``max_nodes`` most visited nodes (a parent has at
least its child's visits, so the set is a tree), depth-first with the most visited child first, so the
first chain is the most visited path. Deterministic: no random numbers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

PROBES = 16
EMPTY = np.int64(-1 << 62)

__all__ = ["new_table", "update", "search"]


def new_table(buckets: int, width: int):
    """``(keys, nexts, counts)``: an empty table of ``buckets`` rows (a power of two) of ``width`` entries."""
    keys = np.full(buckets, EMPTY, dtype=np.int64)
    nexts = np.full((buckets, width), -1, dtype=np.int32)
    counts = np.zeros((buckets, width), dtype=np.int32)
    return keys, nexts, counts


@njit(cache=True, nogil=True)
def _key(a, b):  # pragma: no cover - compiled
    return (np.int64(a) + 1) * np.int64(1 << 31) + np.int64(b)


@njit(cache=True, nogil=True)
def _slot(keys, key):  # pragma: no cover - compiled
    """The row of ``key``, or -1."""
    mask = keys.shape[0] - 1
    h = (key * np.int64(0x9E3779B97F4A7C15)) & np.int64(0x7FFFFFFFFFFFFFFF)
    for p in range(PROBES):
        s = (h + p) & mask
        if keys[s] == key:
            return s
        if keys[s] == EMPTY:
            return -1
    return -1


@njit(cache=True, nogil=True)
def _slot_for_insert(keys, counts, key):  # pragma: no cover - compiled
    mask = keys.shape[0] - 1
    h = (key * np.int64(0x9E3779B97F4A7C15)) & np.int64(0x7FFFFFFFFFFFFFFF)
    victim, victim_total = -1, np.int64(1 << 62)
    for p in range(PROBES):
        s = (h + p) & mask
        if keys[s] == key:
            return s
        if keys[s] == EMPTY:
            keys[s] = key
            return s
        total = counts[s].sum()
        if total < victim_total:
            victim, victim_total = s, total
    keys[victim] = key
    counts[victim, :] = 0
    return victim


@njit(cache=True, nogil=True)
def _count(keys, nexts, counts, key, token):  # pragma: no cover - compiled
    s = _slot_for_insert(keys, counts, key)
    width = nexts.shape[1]
    low = 0
    for j in range(width):
        if counts[s, j] > 0 and nexts[s, j] == token:
            counts[s, j] += 1
            return
        if counts[s, j] < counts[s, low]:
            low = j
    nexts[s, low] = token  # an empty entry (count 0) or the least counted one
    counts[s, low] = 1


@njit(cache=True, nogil=True)
def update(keys, nexts, counts, tokens, start, n):  # pragma: no cover - compiled
    """Count every token ``tokens[i]``, ``start <= i < n``, after its tri-gram and bigram contexts."""
    for i in range(max(start, 1), n):
        b = tokens[i - 1]
        _count(keys, nexts, counts, _key(-1, b), tokens[i])
        if i >= 2:
            _count(keys, nexts, counts, _key(tokens[i - 2], b), tokens[i])


@njit(cache=True, nogil=True)
def _children(keys, nexts, counts, a, b):  # pragma: no cover - compiled
    """The table row of ``(a, b)``, else of ``(-1, b)``; -1 when neither was seen."""
    s = _slot(keys, _key(a, b))
    if s < 0 or counts[s].sum() == 0:
        s = _slot(keys, _key(-1, b))
    if s >= 0 and counts[s].sum() == 0:
        s = -1
    return s


@njit(cache=True, nogil=True)
def search(keys, nexts, counts, a, b, simulations, max_depth, max_nodes, c_puct, out_tokens, out_parents):  # pragma: no cover
    """Run the search from context ``(a, b)``; write the draft tree; return its size (see the module docstring)."""
    width = nexts.shape[1]
    cap = 1 + simulations * width
    token = np.empty(cap, np.int64)
    parent = np.empty(cap, np.int64)
    depth = np.zeros(cap, np.int64)
    prior = np.zeros(cap, np.float64)
    visits = np.zeros(cap, np.int64)
    value = np.zeros(cap, np.float64)
    first = np.full(cap, -1, np.int64)  # first child
    count = np.zeros(cap, np.int64)  # number of children
    expanded = np.zeros(cap, np.bool_)
    token[0], parent[0] = b, -1
    num = 1
    path = np.empty(max_depth + 1, np.int64)
    if max_depth <= 0 or max_nodes <= 0:
        return 0
    for _ in range(simulations):
        node, length, prob, gain = 0, 0, 1.0, 0.0
        path[0] = 0
        while True:
            if not expanded[node]:
                expanded[node] = True
                ctx_a = a if node == 0 else token[parent[node]]  # token[0] is b
                s = _children(keys, nexts, counts, ctx_a, token[node])
                if s >= 0 and depth[node] < max_depth:
                    total = counts[s].sum()
                    first[node] = num
                    for j in range(width):
                        if counts[s, j] > 0:
                            token[num], parent[num], depth[num] = nexts[s, j], node, depth[node] + 1
                            prior[num] = counts[s, j] / total
                            num += 1
                    count[node] = num - first[node]
                break
            if count[node] == 0:
                break
            best, best_score = -1, -1.0
            root_term = math.sqrt(visits[node] + 1.0)
            for c in range(first[node], first[node] + count[node]):
                q = value[c] / visits[c] if visits[c] > 0 else 0.0
                score = q + c_puct * prior[c] * root_term / (1.0 + visits[c])
                if score > best_score:
                    best, best_score = c, score
            node = best
            prob *= prior[node]
            gain += prob
            length += 1
            path[length] = node
        for j in range(length + 1):
            visits[path[j]] += 1
            value[path[j]] += gain
    # the most visited nodes (never the root), then depth-first with the most visited child first
    order = np.argsort(-visits[1:num], kind="mergesort") + 1
    keep = np.zeros(num, np.bool_)
    taken = 0
    for i in order:
        if visits[i] == 0 or taken >= max_nodes:
            break
        keep[i] = True
        taken += 1
    stack = np.empty(taken + 1, np.int64)
    new_index = np.full(num, -1, np.int64)
    top = 0
    stack[0] = 0
    written = 0
    while top >= 0:
        node = stack[top]
        top -= 1
        if node != 0:
            new_index[node] = written
            out_tokens[written] = token[node]
            out_parents[written] = new_index[parent[node]] if parent[node] != 0 else -1
            written += 1
        # push kept children, least visited first, so the most visited is popped next
        kids = np.empty(count[node], np.int64)
        m = 0
        for c in range(first[node], first[node] + count[node]):
            if keep[c]:
                kids[m] = c
                m += 1
        kids = kids[:m]
        kid_order = np.argsort(-visits[kids], kind="mergesort")
        for j in range(m - 1, -1, -1):
            top += 1
            stack[top] = kids[kid_order[j]]
    return written
