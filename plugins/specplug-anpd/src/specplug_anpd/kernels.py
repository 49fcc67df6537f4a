"""Compiled ANPD: every live request's multi-level n-gram table in two shared hash tables (numba).

:class:`specplug_anpd.NgramTable` is the definition in plain Python (one dict per level). The
proposer keeps the same statistics here, for all requests at once, so that one compiled call follows
and drafts a whole batch:

- the **context table** ``ctx`` (``[C, 4 + max_n - 1]`` int64, one row per entry: ``GEN``, ``LVL``,
  ``BEST``, ``COUNT``, then the context tokens) maps ``(gen, n, context of n - 1 tokens)`` to the
  best next token and its count;
- the **pair table** ``pairs`` (``[P, 3]``: ``P_CTX``, ``P_TOK``, ``P_COUNT``) maps ``(context
  entry, next token)`` to how often that token followed it;
- the **slot state** ``state`` (``[slots, 4]``: ``S_GEN``, ``S_SEEN``, ``S_FIRST``, ``S_LAST``) says
  which table a live request uses and how much of its history the table has seen.

Packing each into one array keeps the compiled calls' argument unboxing small (about 0.3 us per
array argument here, which at batch 1 is most of a step).

``gen`` names one request's table: a request that starts over (a reused row, a changed history)
gets a new ``gen`` and its old entries become garbage, never matched again. Both tables use open
addressing with linear probing in power-of-two arrays; an insertion that would fill a table past
:data:`MAX_LOAD` stops the kernel at that row, and the proposer rebuilds the tables (dropping the
garbage, growing them) and resumes at the same row, so a row's update is never half done.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = -1
MAX_LOAD = 0.7  # entries (garbage included) per slot before a rebuild


EMPTY = -1
MAX_LOAD = 0.7  # entries (garbage included) per slot before a rebuild
GEN, LVL, BEST, COUNT, TOK = 0, 1, 2, 3, 4  # columns of ctx (TOK: the first context token)
P_CTX, P_TOK, P_COUNT = 0, 1, 2  # columns of pairs
S_GEN, S_SEEN, S_FIRST, S_LAST = 0, 1, 2, 3  # columns of state


@njit(cache=True, nogil=True, inline="always")
def _mix(h, x):  # pragma: no cover - compiled
    return (h ^ x) * 1099511628211 + 2135587861  # FNV-1a style, int64 wrap-around


@njit(cache=True, nogil=True)
def _ctx_find(ctx, gen, lvl, hist, end):  # pragma: no cover - compiled
    """Entry of context ``hist[end - lvl + 1:end]`` of level ``lvl`` in table ``gen``; ``-1 - free entry`` if absent."""
    mask = ctx.shape[0] - 1
    h = _mix(_mix(0x345678, gen), lvl)
    for j in range(end - lvl + 1, end):
        h = _mix(h, hist[j])
    i = h & mask
    while ctx[i, GEN] != EMPTY:
        if ctx[i, GEN] == gen and ctx[i, LVL] == lvl:
            same = True
            for j in range(lvl - 1):
                if ctx[i, TOK + j] != hist[end - lvl + 1 + j]:
                    same = False
                    break
            if same:
                return i
        i = (i + 1) & mask
    return -1 - i


@njit(cache=True, nogil=True)
def _pair_slot(pairs, e, tok):  # pragma: no cover - compiled
    """Entry of pair ``(e, tok)``, or the free entry where it goes (``P_CTX`` then ``EMPTY``)."""
    mask = pairs.shape[0] - 1
    i = _mix(_mix(0x2545F491, e), tok) & mask
    while pairs[i, P_CTX] != EMPTY and not (pairs[i, P_CTX] == e and pairs[i, P_TOK] == tok):
        i = (i + 1) & mask
    return i


@njit(cache=True, nogil=True)
def _extend(hist, start, n, gen, min_n, max_n, frequent, ctx, pairs, sizes):  # pragma: no cover - compiled
    """Count every (context, next token) pair that the tokens ``hist[start:n]`` complete."""
    for pos in range(start, n):
        tok = hist[pos]
        for lvl in range(min_n, max_n + 1):
            if pos < lvl - 1:
                continue
            e = _ctx_find(ctx, gen, lvl, hist, pos)
            if e < 0:
                e = -1 - e
                ctx[e, GEN], ctx[e, LVL], ctx[e, BEST], ctx[e, COUNT] = gen, lvl, tok, 1
                for j in range(lvl - 1):
                    ctx[e, TOK + j] = hist[pos - lvl + 1 + j]
                sizes[0] += 1
                p = _pair_slot(pairs, e, tok)
                pairs[p, P_CTX], pairs[p, P_TOK], pairs[p, P_COUNT] = e, tok, 1
                sizes[1] += 1
                continue
            p = _pair_slot(pairs, e, tok)
            if pairs[p, P_CTX] == EMPTY:
                pairs[p, P_CTX], pairs[p, P_TOK], pairs[p, P_COUNT] = e, tok, 0
                sizes[1] += 1
            pairs[p, P_COUNT] += 1
            if not frequent or pairs[p, P_COUNT] >= ctx[e, COUNT]:
                ctx[e, BEST], ctx[e, COUNT] = tok, pairs[p, P_COUNT]


@njit(cache=True, nogil=True)
def _draft(hist, n, gen, min_n, max_n, limit, ctx, out, row):  # pragma: no cover - compiled
    """Up to ``limit`` tokens into ``out[row]``: each predicted by the highest level that knows its context."""
    width = min(n, max_n - 1)  # the table's tail: the last max_n - 1 tokens
    buf = np.empty(width + limit, np.int64)
    for j in range(width):
        buf[j] = hist[n - width + j]
    made = 0
    while made < limit:
        end = width + made  # the context is buf[made:end]
        token = -1
        for lvl in range(max_n, min_n - 1, -1):
            if width >= lvl - 1:
                e = _ctx_find(ctx, gen, lvl, buf, end)
                if e >= 0:
                    token = ctx[e, BEST]
                    break
        if token < 0:
            break
        buf[end] = token
        out[row, made] = token
        made += 1
    return made


@njit(cache=True, nogil=True)
def step_rows(token_ids, lengths, limits, slots, first_row, state, used, clock, next_gen, min_n, max_n, frequent,
              ctx, pairs, sizes, out, counts):  # pragma: no cover - compiled
    """Follow and draft rows ``first_row..`` in order; returns ``(stopped_row, clock, next_gen)``.

    Rows with ``limits[row] < 0`` are skipped. For every other row: if its history no longer
    continues what its table saw (shorter, or a different token 0 or token ``seen - 1``) the table
    starts over under a new ``gen``; the new tokens are counted; then ``limits[row]`` tokens at most
    are drafted into ``out[row]`` and their number into ``counts[row]``. ``stopped_row`` is -1 when
    every row was done, else the row whose update would overfill a table (nothing of it is done:
    rebuild and call again from that row).
    """
    levels = max_n - min_n + 1
    c_room = int(ctx.shape[0] * MAX_LOAD)
    p_room = int(pairs.shape[0] * MAX_LOAD)
    for row in range(first_row, token_ids.shape[0]):
        if limits[row] < 0:
            continue
        s = slots[row]
        n = lengths[row]
        k = state[s, S_SEEN]
        restart = k > 0 and (n < k or token_ids[row, 0] != state[s, S_FIRST] or token_ids[row, k - 1] != state[s, S_LAST])
        start = 0 if restart else k
        need = max(0, n - start) * levels
        if sizes[0] + need > c_room or sizes[1] + need > p_room:
            return row, clock, next_gen
        clock += 1
        used[s] = clock
        if restart:
            state[s, S_GEN] = next_gen
            next_gen += 1
        hist = token_ids[row, :n]
        if n > start:
            _extend(hist, start, n, state[s, S_GEN], min_n, max_n, frequent, ctx, pairs, sizes)
            state[s, S_SEEN] = n
            state[s, S_FIRST] = hist[0]
            state[s, S_LAST] = hist[n - 1]
        elif restart:
            state[s, S_SEEN] = 0
        if limits[row] > 0:
            counts[row] = _draft(hist, n, state[s, S_GEN], min_n, max_n, min(limits[row], out.shape[1]), ctx, out, row)
    return -1, clock, next_gen


@njit(cache=True, nogil=True)
def count_live(ctx, pairs, live_gens):  # pragma: no cover - compiled
    """Entries whose ``gen`` is in the sorted array ``live_gens``: (contexts, pairs, keep mask of ctx)."""
    keep = np.zeros(ctx.shape[0], np.bool_)
    contexts = 0
    for i in range(ctx.shape[0]):
        g = ctx[i, GEN]
        if g != EMPTY:
            j = np.searchsorted(live_gens, g)
            if j < live_gens.shape[0] and live_gens[j] == g:
                keep[i] = True
                contexts += 1
    kept_pairs = 0
    for i in range(pairs.shape[0]):
        if pairs[i, P_CTX] != EMPTY and keep[pairs[i, P_CTX]]:
            kept_pairs += 1
    return contexts, kept_pairs, keep


@njit(cache=True, nogil=True)
def rehash(keep, ctx, pairs, new_ctx, new_pairs, sizes):  # pragma: no cover - compiled
    """Copy the ``keep`` context entries and their pairs into the new (empty) tables."""
    moved = np.full(ctx.shape[0], -1, np.int64)
    buf = np.empty(ctx.shape[1], np.int64)
    sizes[0] = 0
    sizes[1] = 0
    for i in range(ctx.shape[0]):
        if not keep[i]:
            continue
        lvl = ctx[i, LVL]
        for j in range(lvl - 1):
            buf[j] = ctx[i, TOK + j]
        e = -1 - _ctx_find(new_ctx, ctx[i, GEN], lvl, buf, lvl - 1)
        new_ctx[e] = ctx[i]
        moved[i] = e
        sizes[0] += 1
    for i in range(pairs.shape[0]):
        if pairs[i, P_CTX] != EMPTY and keep[pairs[i, P_CTX]]:
            e = moved[pairs[i, P_CTX]]
            p = _pair_slot(new_pairs, e, pairs[i, P_TOK])
            new_pairs[p, P_CTX], new_pairs[p, P_TOK], new_pairs[p, P_COUNT] = e, pairs[i, P_TOK], pairs[i, P_COUNT]
            sizes[1] += 1
