"""Staged speculative decoding's draft tree (Spector & Re, arXiv 2308.04623), engine-free.

**Stage 1, a tree-structured batch.** Rather than one long chain, the draft proposes the ``budget``
continuations it finds most probable: the tree is the ``budget`` nodes with the highest cumulative
draft probability (best-first: a node's ``top_k`` children become candidates once it is in the
tree). Shorter branches have a higher chance of surviving verification than the end of a long chain,
so the target's batch is spent where acceptance is likeliest.

**Stage 2, speculating the draft itself.** Growing that tree costs draft forwards, which a second,
much cheaper drafter (:class:`~specplug_staged_spec.ngram.BackoffNgram`) speeds up by speculative
decoding *of the draft model*: every node the draft expands carries the n-gram's guess of the draft's
own greedy continuation (``spec_len`` tokens) in the same batched forward, and each guess the draft
agrees with (it is the draft's top token at its parent) is an expanded node for free; the first
disagreement ends the chain. This is greedy speculative decoding verified by the draft model, so it
changes how many draft forwards the tree takes, never which tree is built: the tree is the same with
the n-gram stage as without it (a test checks both).

Each draft forward expands the node just taken into the tree if it has no expansion yet, plus the
next ``expand_batch - 1`` likeliest candidates (a batch of the tree: they are likely to be taken
next), each with its n-gram chain.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from specplug.kit.trees import TokenTree, TopKDrafter, check_budget

__all__ = ["StagedStats", "staged_tree"]


@dataclass
class StagedStats:
    """What growing one tree took: draft forwards, nodes fed, n-gram tokens proposed and accepted."""

    draft_calls: int = 0
    fed: int = 0
    ngram_proposed: int = 0
    ngram_accepted: int = 0

    def add(self, other: "StagedStats") -> None:
        self.draft_calls += other.draft_calls
        self.fed += other.fed
        self.ngram_proposed += other.ngram_proposed
        self.ngram_accepted += other.ngram_accepted


@dataclass
class _Work:
    """Every node the drafter has seen this step (tree nodes, candidates and rejected n-gram guesses)."""

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)  # cumulative draft log-probability (nan: a guess not yet checked)
    path: list[tuple[int, ...]] = field(default_factory=list)
    children: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # expanded node -> top-k
    node_of: dict[tuple[int, int], int] = field(default_factory=dict)  # (parent, token) -> candidate node

    def add(self, token: int, parent: int, logp: float) -> int:
        self.tokens.append(int(token))
        self.parents.append(int(parent))
        self.logp.append(float(logp))
        self.path.append((self.path[parent] if parent >= 0 else ()) + (int(token),))
        return len(self.tokens) - 1


def staged_tree(drafter: TopKDrafter, budget: int, top_k: int = 4, expand_batch: int = 4, spec_len: int = 4,
                ngram=None, context: list[int] | None = None) -> tuple[TokenTree, StagedStats]:
    """The staged draft tree of at most ``budget`` nodes (see the module docstring).

    ``ngram`` (an object with ``chain(history, length)``) and ``context`` (the committed tokens) are
    the second stage; without them, or with ``spec_len=0``, the tree is grown by the draft alone.
    The drafter must accept a node and its n-gram descendants in one ``expand`` call (parents first).
    """
    budget = check_budget(budget)
    if top_k < 1 or expand_batch < 1 or spec_len < 0:
        raise ValueError(f"staged tree needs top_k >= 1, expand_batch >= 1 and spec_len >= 0, got {top_k}, {expand_batch}, {spec_len}")
    context = list(context or [])
    staged = ngram is not None and spec_len > 0
    stats = StagedStats()
    work = _Work()
    pool: list[tuple[float, tuple[int, ...], int]] = []  # (-logp, path, node): children of tree nodes

    def offer_children(node: int) -> None:
        tokens, probs = work.children[node]
        base = work.logp[node] if node >= 0 else 0.0
        for token, prob in zip(tokens.tolist(), probs.tolist()):
            if prob <= 0:
                continue
            child = work.node_of.get((node, token))
            if child is None:
                child = work.add(token, node, base + math.log(prob))
                work.node_of[(node, token)] = child
            else:
                work.logp[child] = base + math.log(prob)
            heapq.heappush(pool, (-work.logp[child], work.path[child], child))

    def expand(nodes: list[int]) -> None:
        feed: list[int] = []
        chains: dict[int, list[int]] = {}
        for node in nodes:
            feed.append(node)
            if staged:
                guesses = ngram.chain(context + list(work.path[node]), spec_len)
                stats.ngram_proposed += len(guesses)
                chain, parent = [], node
                for token in guesses:
                    parent = work.add(token, parent, float("nan"))
                    chain.append(parent)
                chains[node] = chain
                feed.extend(chain)
        out = drafter.expand(feed, work.tokens, work.parents, top_k)
        stats.draft_calls += 1
        stats.fed += len(feed)
        row = {n: i for i, n in enumerate(feed)}
        for node in nodes:
            work.children[node] = (out.tokens[row[node]], out.probs[row[node]])
            parent = node
            for guess in chains.get(node, []):
                tokens, probs = work.children[parent]
                if int(tokens[0]) != work.tokens[guess] or probs[0] <= 0:
                    break  # the draft disagrees: this guess and the rest of the chain are dead
                stats.ngram_accepted += 1
                work.logp[guess] = (work.logp[parent] if parent >= 0 else 0.0) + math.log(float(probs[0]))
                work.node_of[(parent, work.tokens[guess])] = guess
                work.children[guess] = (out.tokens[row[guess]], out.probs[row[guess]])
                parent = guess

    # the root's children come with the committed context (no forward of this step)
    root = drafter.expand([-1], work.tokens, work.parents, top_k)
    work.children[-1] = (root.tokens[0], root.probs[0])
    offer_children(-1)
    taken: list[int] = []
    while len(taken) < budget and pool:
        _, _, node = heapq.heappop(pool)
        taken.append(node)
        if len(taken) == budget:
            break
        if node not in work.children:
            ahead = [n for _, _, n in heapq.nsmallest(expand_batch - 1, pool) if n not in work.children]
            expand([node] + ahead)
        offer_children(node)
    index = {node: i for i, node in enumerate(taken)}
    tree = TokenTree(np.array([work.tokens[n] for n in taken], dtype=np.int64),
                     np.array([index[work.parents[n]] if work.parents[n] >= 0 else -1 for n in taken], dtype=np.int64),
                     np.array([work.logp[n] for n in taken], dtype=np.float64), stats.draft_calls)
    return tree, stats
