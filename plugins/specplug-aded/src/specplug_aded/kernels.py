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

__all__ = ["new_table", "propose_rows", "search", "update"]


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
def _node(token, parent, depth, visits, value, first, count, expanded, i, t, p, d):  # pragma: no cover - compiled
    token[i], parent[i], depth[i] = t, p, d
    visits[i], value[i], first[i], count[i], expanded[i] = 0, 0.0, -1, 0, False


@njit(cache=True, nogil=True)
def _simulate(keys, nexts, counts, a, b, simulations, max_depth, c_puct,
              token, parent, depth, prior, visits, value, first, count, expanded, path):  # pragma: no cover - compiled
    """Run the ``simulations`` from context ``(a, b)`` in the given arrays; returns the number of nodes."""
    width = nexts.shape[1]
    _node(token, parent, depth, visits, value, first, count, expanded, 0, b, -1, 0)
    num = 1
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
                            _node(token, parent, depth, visits, value, first, count, expanded, num, nexts[s, j], node,
                                  depth[node] + 1)
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
    return num


@njit(cache=True, nogil=True)
def search(keys, nexts, counts, a, b, simulations, max_depth, max_nodes, c_puct, out_tokens, out_parents):  # pragma: no cover
    """Run the search from context ``(a, b)``; write the draft tree; return its size (see the module docstring)."""
    if max_depth <= 0 or max_nodes <= 0:
        return 0
    width = nexts.shape[1]
    cap = 1 + simulations * width
    token, parent, depth = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
    prior, visits, value = np.empty(cap, np.float64), np.empty(cap, np.int64), np.empty(cap, np.float64)
    first, count, expanded = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.bool_)
    path = np.empty(max_depth + 1, np.int64)
    num = _simulate(keys, nexts, counts, a, b, simulations, max_depth, c_puct,
                    token, parent, depth, prior, visits, value, first, count, expanded, path)
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


@njit(cache=True, nogil=True)
def _first_chain(token, visits, first, count, num, max_nodes, limit, out):  # pragma: no cover - compiled
    """The first chain of :func:`search`'s tree without building the tree: from the root, the most
    visited child (ties: the earliest), while it is among the ``max_nodes`` most visited nodes (the
    stable order :func:`search` keeps them in). Writes ``out``; returns the chain's length."""
    node, m = 0, 0
    while m < limit and count[node] > 0:
        best = -1
        for c in range(first[node], first[node] + count[node]):
            if visits[c] > 0 and (best < 0 or visits[c] > visits[best]):
                best = c
        if best < 0:
            break
        rank = 0  # nodes before ``best`` in search's order: more visits, or as many and earlier
        for j in range(1, num):
            if visits[j] > visits[best] or (visits[j] == visits[best] and j < best):
                rank += 1
        if rank >= max_nodes:
            break
        out[m] = token[best]
        m += 1
        node = best
    return m


@njit(cache=True, nogil=True)
def propose_rows(keys, nexts, counts, seen, slots, token_ids, lengths, limits, simulations, max_nodes, c_puct,
                 out, out_counts, used, clock):  # pragma: no cover - compiled
    """The batch step, row after row as ``propose`` would run them: count each live row's new tokens
    (``seen[slot]`` of them were counted before; a reused id with a shorter text counts from 0),
    search from its last two tokens, and write the most visited path to ``out[row]``. Returns the
    slots' new clock."""
    width = nexts.shape[1]
    max_depth = out.shape[1]
    cap = 1 + simulations * width
    token, parent, depth = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
    prior, visits, value = np.empty(cap, np.float64), np.empty(cap, np.int64), np.empty(cap, np.float64)
    first, count, expanded = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.bool_)
    path = np.empty(max_depth + 1, np.int64)
    for row in range(slots.shape[0]):
        slot, limit, n = slots[row], limits[row], lengths[row]
        if slot < 0 or limit <= 0:
            continue
        tokens = token_ids[row]
        start = seen[slot] if seen[slot] <= n else 0
        update(keys, nexts, counts, tokens, start, n)
        seen[slot] = n
        clock += 1
        used[slot] = clock
        if n < 1:
            continue
        nodes = min(max_nodes, limit * width)
        a = tokens[n - 2] if n >= 2 else -1
        num = _simulate(keys, nexts, counts, a, tokens[n - 1], simulations, limit, c_puct,
                        token, parent, depth, prior, visits, value, first, count, expanded, path)
        out_counts[row] = _first_chain(token, visits, first, count, num, nodes, limit, out[row])
    return clock
