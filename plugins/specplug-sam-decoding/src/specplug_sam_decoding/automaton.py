"""Suffix automata over token ids: online construction and longest-suffix matching (numba).

A suffix automaton (SAM) of a text ``T`` is the smallest automaton whose paths from the root spell
exactly the substrings of ``T``. Every state is a class of substrings with the same set of end
positions; ``len`` is the longest of them and ``link`` (the suffix link) leads to the state of the
longest suffix that ends in more places. It is built online, one token at a time, in amortised
constant time per token (Blumer et al. 1985), with at most ``2n`` states and ``3n`` transitions.

SAM-Decoding (arXiv 2411.10666) keeps, per request, the state of the longest suffix of the
committed text that also occurs in a text ``T``:

- over the request's own text (the *dynamic* automaton): for each new token ``t`` at position
  ``i``, first follow ``t`` from the current state in the automaton of ``T[:i]`` (falling back along
  suffix links when there is no transition), *then* extend the automaton with ``t``. The matched
  string therefore always has an occurrence that ends before ``i``, and the tokens after that
  occurrence are the draft;
- over a static corpus (the *static* automaton, built once): the same walk, never extended.

Both walks cost amortised O(1) per token: the match length grows by at most one per token and each
suffix-link step shrinks it.

Layout (int32 arrays, so a batch of automata can be handed to compiled code without Python objects):

- ``states[s] = (LEN, LINK, HEAD, POS)``: longest length, suffix link (-1 at the root), first edge of
  the state's transition list (-1: none), and the end position of the state's first occurrence;
- ``edges[e] = (TOKEN, TARGET, NEXT)``: a transition and the next edge of the same state (a linked
  list per state: the vocabulary is far too large for dense rows; most states have one or two
  transitions);
- ``meta`` (int64): ``NUM_STATES, NUM_EDGES, LAST`` (the state of the whole text) and, for a
  request, the dynamic match ``(D_STATE, D_LEN)``, the static match ``(S_STATE, S_LEN)`` and ``SEEN``
  (how many of the request's tokens were read).
"""

from __future__ import annotations

import numpy as np
from numba import njit

LEN, LINK, HEAD, POS = 0, 1, 2, 3
TOKEN, TARGET, NEXT = 0, 1, 2
NUM_STATES, NUM_EDGES, LAST, D_STATE, D_LEN, S_STATE, S_LEN, SEEN = range(8)
META_SIZE = 8

__all__ = ["Automaton", "build_static", "longest_match_brute_force"]


@njit(cache=True, nogil=True)
def _find(states, edges, state, token):  # pragma: no cover - compiled
    e = states[state, HEAD]
    while e >= 0:
        if edges[e, TOKEN] == token:
            return edges[e, TARGET]
        e = edges[e, NEXT]
    return -1


@njit(cache=True, nogil=True)
def _add_edge(states, edges, meta, state, token, target):  # pragma: no cover - compiled
    e = meta[NUM_EDGES]
    edges[e, TOKEN] = token
    edges[e, TARGET] = target
    edges[e, NEXT] = states[state, HEAD]
    states[state, HEAD] = e
    meta[NUM_EDGES] = e + 1


@njit(cache=True, nogil=True)
def _redirect(states, edges, state, token, target):  # pragma: no cover - compiled
    e = states[state, HEAD]
    while e >= 0:
        if edges[e, TOKEN] == token:
            edges[e, TARGET] = target
            return
        e = edges[e, NEXT]


@njit(cache=True, nogil=True)
def _new_state(states, meta, length, link, pos):  # pragma: no cover - compiled
    s = meta[NUM_STATES]
    states[s, LEN] = length
    states[s, LINK] = link
    states[s, HEAD] = -1
    states[s, POS] = pos
    meta[NUM_STATES] = s + 1
    return s


@njit(cache=True, nogil=True)
def extend(states, edges, meta, token, pos):  # pragma: no cover - compiled
    """Append ``token`` (at text position ``pos``) to the automaton: the classic online step."""
    last = meta[LAST]
    cur = _new_state(states, meta, states[last, LEN] + 1, -1, pos)
    p = last
    while p != -1 and _find(states, edges, p, token) == -1:
        _add_edge(states, edges, meta, p, token, cur)
        p = states[p, LINK]
    if p == -1:
        states[cur, LINK] = 0
    else:
        q = _find(states, edges, p, token)
        if states[p, LEN] + 1 == states[q, LEN]:
            states[cur, LINK] = q
        else:
            clone = _new_state(states, meta, states[p, LEN] + 1, states[q, LINK], states[q, POS])
            e = states[q, HEAD]
            while e >= 0:
                _add_edge(states, edges, meta, clone, edges[e, TOKEN], edges[e, TARGET])
                e = edges[e, NEXT]
            while p != -1 and _find(states, edges, p, token) == q:
                _redirect(states, edges, p, token, clone)
                p = states[p, LINK]
            states[q, LINK] = clone
            states[cur, LINK] = clone
    meta[LAST] = cur


@njit(cache=True, nogil=True)
def advance(states, edges, state, length, token):  # pragma: no cover - compiled
    """The match after reading ``token``: follow its transition, else fall back along suffix links."""
    while True:
        nxt = _find(states, edges, state, token)
        if nxt >= 0:
            return nxt, length + 1
        if state == 0:
            return 0, 0
        state = states[state, LINK]
        length = states[state, LEN]


@njit(cache=True, nogil=True)
def follow(states, edges, meta, tokens, n, s_states, s_edges, use_static):  # pragma: no cover - compiled
    """Read ``tokens[meta[SEEN]:n]``: update both matches and extend the dynamic automaton."""
    state, length = meta[D_STATE], meta[D_LEN]
    s_state, s_len = meta[S_STATE], meta[S_LEN]
    for i in range(meta[SEEN], n):
        t = tokens[i]
        state, length = advance(states, edges, state, length, t)
        extend(states, edges, meta, t, i)
        # a split may have moved the matched string into the clone: keep the state that holds it
        while state != 0 and length <= states[states[state, LINK], LEN]:
            state = states[state, LINK]
        if use_static:
            s_state, s_len = advance(s_states, s_edges, s_state, s_len, t)
    meta[D_STATE], meta[D_LEN] = state, length
    meta[S_STATE], meta[S_LEN] = s_state, s_len
    meta[SEEN] = n


@njit(cache=True, nogil=True)
def draft(meta, states, tokens, n, s_states, corpus, use_static, min_match, static_margin, limit, out):  # pragma: no cover
    """Write the draft into ``out``; returns ``(count, source, match length)`` (source 1 dynamic, 2 static, 0 none).

    The dynamic match wins unless the static one is longer by more than ``static_margin`` tokens
    (the request's own text is the better predictor of itself, as in the paper's selection rule).
    """
    d_len = meta[D_LEN]
    s_len = meta[S_LEN] if use_static else 0
    if limit <= 0:
        return 0, 0, max(d_len, s_len)
    if d_len >= min_match and d_len + static_margin >= s_len:
        start = states[meta[D_STATE], POS] + 1
        m = min(limit, n - start)
        for j in range(m):
            out[j] = tokens[start + j]
        return m, 1, d_len
    if use_static and s_len >= min_match:
        start = s_states[meta[S_STATE], POS] + 1
        m = 0
        while m < limit and start + m < corpus.shape[0] and corpus[start + m] >= 0:
            out[m] = corpus[start + m]
            m += 1
        return m, 2, s_len
    return 0, 0, max(d_len, s_len)


@njit(cache=True, nogil=True)
def step(states, edges, meta, tokens, n, s_states, s_edges, corpus, use_static, min_match, static_margin, limit, out):  # pragma: no cover
    """:func:`follow` then :func:`draft` in one compiled call (one dispatch per row on the batch path)."""
    follow(states, edges, meta, tokens, n, s_states, s_edges, use_static)
    return draft(meta, states, tokens, n, s_states, corpus, use_static, min_match, static_margin, limit, out)


@njit(cache=True, nogil=True)
def _build(states, edges, meta, corpus):  # pragma: no cover - compiled
    for i in range(corpus.shape[0]):
        extend(states, edges, meta, corpus[i], i)


def _empty(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays for an automaton of a text of up to ``capacity`` tokens, holding only the root."""
    states = np.empty((2 * capacity + 2, 4), dtype=np.int32)
    edges = np.empty((3 * capacity + 4, 3), dtype=np.int32)
    meta = np.zeros(META_SIZE, dtype=np.int64)
    states[0] = (0, -1, -1, -1)
    meta[NUM_STATES] = 1
    return states, edges, meta


class Automaton:
    """One request's dynamic automaton and its two match states; arrays grow by doubling."""

    __slots__ = ("states", "edges", "meta", "capacity")

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self.states, self.edges, self.meta = _empty(capacity)

    def reserve(self, n: int) -> None:
        """Room for a text of ``n`` tokens (copies the arrays when they must grow)."""
        if n <= self.capacity:
            return
        capacity = max(n, 2 * self.capacity)
        states, edges, _ = _empty(capacity)
        states[: self.states.shape[0]] = self.states
        edges[: self.edges.shape[0]] = self.edges
        self.states, self.edges, self.capacity = states, edges, capacity

    @property
    def seen(self) -> int:
        return int(self.meta[SEEN])

    @property
    def num_states(self) -> int:
        return int(self.meta[NUM_STATES])

    def nbytes(self) -> int:
        return self.states.nbytes + self.edges.nbytes + self.meta.nbytes


def build_static(corpus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(states, edges)`` of the automaton of ``corpus`` (int32 token ids; -1 separates documents and never matches)."""
    corpus = np.ascontiguousarray(corpus, dtype=np.int32)
    states, edges, meta = _empty(max(int(corpus.shape[0]), 1))
    _build(states, edges, meta, corpus)
    return states[: meta[NUM_STATES]].copy(), edges[: meta[NUM_EDGES]].copy()


def longest_match_brute_force(text, i: int) -> tuple[int, int]:
    """``(length, end)`` of the longest suffix of ``text[:i + 1]`` that occurs in ``text[:i]``, ending at its
    first occurrence ``end`` (-1 when the length is 0). The definition the dynamic automaton answers."""
    best, best_end = 0, -1
    for length in range(1, i + 1):
        pattern = list(text[i + 1 - length : i + 1])
        ends = [e for e in range(length - 1, i) if list(text[e + 1 - length : e + 1]) == pattern]
        if not ends:
            break
        best, best_end = length, ends[0]
    return best, best_end
