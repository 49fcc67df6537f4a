"""Compiled kernels of SuffixDecoding: pattern matching and speculation trees (numba, numpy arrays).

Everything here is engine-free and allocation-light; :mod:`specplug_suffix.proposer` holds the state.

- :func:`local_matches`: the longest suffix of the history (up to ``max_depth`` tokens) that occurs
  earlier in the same history, and where its most recent occurrences continue. This answers the
  same question as the paper's per-request suffix tree (the matched node's subtree is exactly the
  set of continuations of the pattern's occurrences), with one compiled pass and no tree to keep
  in sync.
- :func:`ring_insert` / :func:`ring_matches`: the global cache of earlier outputs, a ring buffer of
  tokens with a bigram hash index chaining every position to the previous one with the same
  bigram. Memory is fixed by the ring's capacity; old outputs fall out as new ones are written.
- :func:`build_tree`: a frequency-scored speculation tree from the continuations of the matched
  occurrences, as in the paper: node probability = count(child) / count(parent) times the
  parent's, nodes taken best-first while probability >= ``min_prob``, at most ``max_spec`` nodes.
  Nodes come out in depth-first order with the most probable child first, so the first
  root-to-leaf chain of the tree is the most probable chain.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SEP = -1  # separates outputs in the ring; matches no token


@njit(cache=True, nogil=True)
def _longest_starts(cand, clen, m, best, max_occ):  # pragma: no cover - compiled
    """The first ``max_occ`` of ``cand[:m]`` whose match length ``clen`` equals ``best``, in order."""
    count = 0
    for i in range(m):
        if clen[i] == best:
            count += 1
    count = min(count, max_occ)
    starts = np.empty(count, np.int64)
    j = 0
    for i in range(m):
        if j == count:
            break
        if clen[i] == best:
            starts[j] = cand[i]
            j += 1
    return starts


@njit(cache=True, nogil=True)
def local_matches(hist, max_depth, max_occ):  # pragma: no cover - compiled
    """(match length, continuation starts most recent first) of the history's longest repeated suffix.

    ``hist`` is ``[n]`` committed tokens. A candidate occurrence ends at ``start - 1 <= n - 2``;
    its match length counts equal tokens backwards from there against the history's suffix, capped
    at ``max_depth``. Returns the longest length and the starts of up to ``max_occ`` most recent
    occurrences of that length (``[0]`` starts when nothing repeats).
    """
    n = hist.shape[0]
    starts = np.empty(0, np.int64)
    if n < 2:
        return 0, starts
    last = hist[n - 1]
    cand = np.empty(n, np.int64)
    clen = np.empty(n, np.int64)
    m = 0
    best = 0
    for start in range(n - 1, 0, -1):
        if hist[start - 1] != last:
            continue
        length = 1
        while length < max_depth and start - 1 - length >= 0 and hist[start - 1 - length] == hist[n - 1 - length]:
            length += 1
        cand[m] = start
        clen[m] = length
        m += 1
        if length > best:
            best = length
    return best, _longest_starts(cand, clen, m, best, max_occ)


@njit(cache=True, nogil=True)
def local_rows(hist, starts, depth):  # pragma: no cover - compiled
    """``[len(starts), depth]`` continuations ``hist[s:s + depth]``, padded with SEP past the end."""
    n = hist.shape[0]
    rows = np.full((starts.shape[0], depth), SEP, np.int64)
    for r in range(starts.shape[0]):
        for j in range(depth):
            p = starts[r] + j
            if p >= n:
                break
            rows[r, j] = hist[p]
    return rows


@njit(cache=True, nogil=True)
def _bucket(a, b, mask):  # pragma: no cover - compiled
    return ((a * 1000003) ^ (b * 69069 + 12345)) & mask


@njit(cache=True, nogil=True)
def ring_insert(ring, prev, head, write, tokens):  # pragma: no cover - compiled
    """Append ``tokens`` and a separator at absolute position ``write``; returns the new ``write``.

    ``ring[p % C]`` holds the token at absolute position ``p``; ``prev[p % C]`` the previous
    position whose bigram (token before, token) hashes to the same bucket, or -1; ``head[b]`` the
    latest position of bucket ``b``. Positions older than ``write - C`` are overwritten.
    """
    cap = ring.shape[0]
    mask = head.shape[0] - 1
    for i in range(tokens.shape[0] + 1):
        tok = tokens[i] if i < tokens.shape[0] else SEP
        slot = write % cap
        ring[slot] = tok
        prev[slot] = -1
        if tok >= 0 and i > 0:
            before = ring[(write - 1) % cap]
            if before >= 0:
                b = _bucket(before, tok, mask)
                prev[slot] = head[b]
                head[b] = write
        write += 1
    return write


@njit(cache=True, nogil=True)
def ring_matches(ring, prev, head, write, lower, hist, max_depth, max_candidates, max_occ):  # pragma: no cover
    """Like :func:`local_matches`, over the ring's valid positions ``[lower, write)``.

    Occurrences are found through the bigram of the history's last two tokens (so matches are at
    least 2 tokens long); at most ``max_candidates`` chained positions are examined, newest first.
    Returned starts are absolute ring positions.
    """
    n = hist.shape[0]
    starts = np.empty(0, np.int64)
    if n < 2 or write == 0:
        return 0, starts
    cap = ring.shape[0]
    a, b = hist[n - 2], hist[n - 1]
    pos = head[_bucket(a, b, head.shape[0] - 1)]
    cand = np.empty(max_candidates, np.int64)
    clen = np.empty(max_candidates, np.int64)
    m = 0
    seen = 0
    best = 0
    while pos >= lower and pos - 1 >= lower and seen < max_candidates:
        seen += 1
        if ring[pos % cap] == b and ring[(pos - 1) % cap] == a and pos + 1 < write and ring[(pos + 1) % cap] >= 0:
            length = 2
            while length < max_depth and n - 1 - length >= 0 and pos - length >= lower and ring[(pos - length) % cap] == hist[n - 1 - length]:
                length += 1
            cand[m] = pos + 1
            clen[m] = length
            m += 1
            if length > best:
                best = length
        nxt = prev[pos % cap]
        if nxt >= pos:
            break
        pos = nxt
    return best, _longest_starts(cand, clen, m, best, max_occ)


@njit(cache=True, nogil=True)
def ring_rows(ring, write, starts, depth):  # pragma: no cover - compiled
    """``[len(starts), depth]`` continuations from the ring, stopping at a separator or at ``write``."""
    cap = ring.shape[0]
    rows = np.full((starts.shape[0], depth), SEP, np.int64)
    for r in range(starts.shape[0]):
        for j in range(depth):
            p = starts[r] + j
            if p >= write:
                break
            tok = ring[p % cap]
            if tok < 0:
                break
            rows[r, j] = tok
    return rows


@njit(cache=True, nogil=True)
def build_tree(rows, max_spec, min_prob, as_tree):  # pragma: no cover - compiled
    """The speculation tree (or chain) from continuation rows; returns (tokens, parents, probs).

    ``rows`` is ``[m, depth]``, one matched occurrence per row, SEP-padded. Counts make a trie
    whose root has count ``m``. ``as_tree=False`` follows the most probable child only.
    Output nodes are in depth-first order, most probable child first; ``parents[i] = -1`` for
    children of the root. Ties go to the child seen first (rows are newest occurrence first).
    """
    m, depth = rows.shape
    cap = m * depth + 1
    tok = np.empty(cap, np.int64)
    parent = np.full(cap, -1, np.int64)
    count = np.zeros(cap, np.int64)
    first = np.full(cap, -1, np.int64)
    sibling = np.full(cap, -1, np.int64)
    count[0] = m
    size = 1
    for r in range(m):
        node = 0
        for j in range(depth):
            t = rows[r, j]
            if t < 0:
                break
            child = first[node]
            last = -1
            while child >= 0 and tok[child] != t:
                last = child
                child = sibling[child]
            if child < 0:
                child = size
                size += 1
                tok[child] = t
                parent[child] = node
                if last < 0:
                    first[node] = child
                else:
                    sibling[last] = child
            count[child] += 1
            node = child
    prob = np.zeros(size, np.float64)
    prob[0] = 1.0
    for c in range(1, size):  # parents are created before their children
        prob[c] = prob[parent[c]] * count[c] / count[parent[c]]

    chosen = np.zeros(size, np.bool_)
    n_chosen = 0
    if as_tree:
        frontier = np.zeros(size, np.bool_)
        c = first[0]
        while c >= 0:
            frontier[c] = True
            c = sibling[c]
        while n_chosen < max_spec:
            pick = -1
            for c in range(1, size):
                if frontier[c] and (pick < 0 or prob[c] > prob[pick]):
                    pick = c
            if pick < 0 or prob[pick] < min_prob:
                break
            frontier[pick] = False
            chosen[pick] = True
            n_chosen += 1
            c = first[pick]
            while c >= 0:
                frontier[c] = True
                c = sibling[c]
    else:
        node = 0
        while n_chosen < max_spec:
            pick = -1
            c = first[node]
            while c >= 0:
                if pick < 0 or prob[c] > prob[pick]:
                    pick = c
                c = sibling[c]
            if pick < 0 or prob[pick] < min_prob:
                break
            chosen[pick] = True
            n_chosen += 1
            node = pick

    out_tok = np.empty(n_chosen, np.int64)
    out_parent = np.empty(n_chosen, np.int64)
    out_prob = np.empty(n_chosen, np.float64)
    index = np.full(size, -1, np.int64)  # trie node -> output position
    stack = np.empty(size, np.int64)
    top = 0
    kids = np.empty(size, np.int64)
    # push the root's chosen children, least probable first, so the most probable pops first
    node = 0
    written = 0
    while True:
        nk = 0
        c = first[node]
        while c >= 0:
            if chosen[c]:
                kids[nk] = c
                nk += 1
            c = sibling[c]
        # insertion sort: ascending probability, later-seen first among ties (popped last)
        for i in range(1, nk):
            x = kids[i]
            j = i - 1
            while j >= 0 and (prob[kids[j]] > prob[x] or (prob[kids[j]] == prob[x] and kids[j] < x)):
                kids[j + 1] = kids[j]
                j -= 1
            kids[j + 1] = x
        for i in range(nk):
            stack[top] = kids[i]
            top += 1
        if top == 0:
            break
        top -= 1
        node = stack[top]
        index[node] = written
        out_tok[written] = tok[node]
        out_parent[written] = index[parent[node]] if parent[node] > 0 else -1
        out_prob[written] = prob[node]
        written += 1
    return out_tok, out_parent, out_prob


@njit(cache=True, nogil=True)
def _spec_len(match_len, factor, offset, max_tokens):  # pragma: no cover - compiled
    depth = int(factor * match_len + offset)
    return max(0, min(max_tokens, depth))


@njit(cache=True, nogil=True)
def speculate(hist, ring, prev, head, write, lower, use_ring, max_depth, max_occ, max_candidates,
              factor, offset, max_tokens, min_prob, as_tree):  # pragma: no cover - compiled
    """One step of SuffixDecoding in one compiled call: both sources, the better tree.

    Returns ``(tokens, parents, source)`` with ``source`` 0 (no draft), 1 (the request's own
    history) or 2 (the global cache). Sources are compared by score, the sum of node
    probabilities; the request's own history wins ties.
    """
    best_tok = np.empty(0, np.int64)
    best_par = np.empty(0, np.int64)
    best_score = -1.0
    source = 0
    p, starts = local_matches(hist, max_depth, max_occ)
    depth = _spec_len(p, factor, offset, max_tokens)
    if starts.shape[0] > 0 and depth > 0:
        tok, par, prob = build_tree(local_rows(hist, starts, depth), depth, min_prob, as_tree)
        if tok.shape[0] > 0:
            best_tok, best_par, best_score, source = tok, par, prob.sum(), 1
    if use_ring:
        p, starts = ring_matches(ring, prev, head, write, lower, hist, max_depth, max_candidates, max_occ)
        depth = _spec_len(p, factor, offset, max_tokens)
        if starts.shape[0] > 0 and depth > 0:
            tok, par, prob = build_tree(ring_rows(ring, write, starts, depth), depth, min_prob, as_tree)
            if tok.shape[0] > 0 and prob.sum() > best_score:
                best_tok, best_par, source = tok, par, 2
    return best_tok, best_par, source


# -- per-request state in slot arrays, and the batched step --------------------------------------


NUM_PROMPT, SEEN, FIRST, LAST, RESP_LEN = range(5)  # columns of the per-slot state array


@njit(cache=True, nogil=True)
def follow_rows(token_ids, lengths, max_tokens, slots, row_prompt, state, resp, used, clock):  # pragma: no cover
    """Record each live row's newly committed tokens as its request's output; returns the new clock.

    ``state[slot]`` holds ``NUM_PROMPT``, ``SEEN`` (tokens already followed; -1 for a request opened
    on first sight, which starts after its prompt), ``FIRST`` / ``LAST`` (tokens 0 and ``SEEN - 1``,
    a cheap check that the row still holds the history followed so far) and ``RESP_LEN``: the output
    so far is ``resp[slot, :RESP_LEN]``. A row whose history does not continue what its slot saw
    holds another text under the same id: the slot starts over from the row's prompt
    (``row_prompt``). ``resp`` must have at least ``max(lengths)`` columns.
    """
    for row in range(token_ids.shape[0]):
        if max_tokens[row] <= 0:
            continue
        s = slots[row]
        n = lengths[row]
        clock += 1
        used[s] = clock
        k = state[s, SEEN]
        if k > 0 and (n < k or token_ids[row, 0] != state[s, FIRST] or token_ids[row, k - 1] != state[s, LAST]):
            k = -1  # another history under this id: start over, cache nothing of it
            state[s, NUM_PROMPT] = row_prompt[row]
            state[s, RESP_LEN] = 0
        if k < 0:
            k = min(n, state[s, NUM_PROMPT])
        if n > k:
            m = state[s, RESP_LEN]
            for pos in range(max(k, state[s, NUM_PROMPT]), n):
                resp[s, m] = token_ids[row, pos]
                m += 1
            state[s, RESP_LEN] = m
            k = n
        state[s, SEEN] = k
        if n > 0:
            state[s, FIRST] = token_ids[row, 0]
            state[s, LAST] = token_ids[row, n - 1]
    return clock


@njit(cache=True, nogil=True)
def speculate_rows(token_ids, lengths, max_tokens, ring, prev, head, write, lower, use_ring, max_depth, max_occ,
                   max_candidates, factor, offset, min_prob, as_tree, out, counts):  # pragma: no cover - compiled
    """:func:`speculate` for every live row; each row's first chain goes into ``out[row]``.

    Nodes come out depth-first with the most probable child first, so the first root-to-leaf chain
    is the prefix of nodes whose parent is the node before them.
    """
    for row in range(token_ids.shape[0]):
        limit = min(max_tokens[row], out.shape[1])
        if limit <= 0:
            continue
        tokens, parents, source = speculate(token_ids[row, : lengths[row]], ring, prev, head, write, lower, use_ring,
                                            max_depth, max_occ, max_candidates, factor, offset, limit, min_prob, as_tree)
        m = 0
        while m < tokens.shape[0] and m < limit and parents[m] == m - 1:
            out[row, m] = tokens[m]
            m += 1
        counts[row] = m
