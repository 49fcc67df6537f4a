"""Token-tree construction over any drafter that gives top-k continuations (numpy only).

A tree method differs from a chain method in *which* candidates it sends the target. Every method
here asks the same question of its drafter: "for these tree nodes, what are your ``k`` most likely
next tokens and their probabilities?" (:class:`TopKDrafter`). A derived draft model
(:class:`specplug.kit.tree_drafting.ModelTopKDrafter`) and a trained EAGLE head (the eagle plugin's
proposer) both answer it, so every builder below runs over either.

Builders (each returns a :class:`TokenTree`, parents before children):

- :func:`instantiate_shape`: a fixed shape (:class:`TreeShape`: each node is the ``rank``-th best
  child of its parent) filled with the drafter's tokens, one drafter call per depth. Sequoia's trees
  and the fixed trees (Medusa/EAGLE-style "choices") are shapes.
- :func:`sequoia_shape`: Sequoia's dynamic program (Chen et al., arXiv 2402.12374): the shape of at
  most ``budget`` nodes that maximises the expected number of accepted tokens when the ``i``-th
  child of any node is accepted with the *positional acceptance* ``acceptance[i]`` given that the
  first ``i - 1`` were rejected. The score of a shape is the sum, over its nodes, of the product of
  the acceptances along the node's path (a node is accepted only if its whole path is).
- :func:`dynamic_tree`: EAGLE-2's expand-then-rerank by cumulative draft probability.
- :func:`opt_tree`: OPT-Tree (Wang et al., arXiv 2406.17276): grown one depth per drafter call; after
  each depth the tree is the ``budget`` nodes with the highest cumulative draft probability among
  everything drafted, which maximises the estimated expected acceptance length
  ``E(T) = sum of the nodes' cumulative probabilities`` for that budget. It stops when a new depth
  raises ``E`` by less than ``threshold`` (the paper's stopping rule).
- :func:`best_first_tree`: SpecExec (Svirschevski et al., arXiv 2406.02532): best-first search over
  cumulative draft probability; each drafter call expands the ``expand_batch`` most likely
  unexpanded nodes; the tree is the ``budget`` most likely nodes found.
- :func:`adaptive_width_tree`: EdgeLLM / LLMCad (Xu et al., arXiv 2309.04255): the tree follows the
  draft's best path; where the draft's confidence (its top probability) is below ``branch_below``
  it adds the next-best tokens as siblings (up to ``max_width``), and it stops drafting (falls back
  to verification) when the cumulative confidence of the path falls below ``stop_below``; an empty
  draft is a plain decoding step.

Positional acceptance profiles (:class:`AcceptanceProfile`): measured per target, drafter and
temperature, saved as JSON with the target's fingerprint; loading one for another target is an
error (:class:`ProfileMismatchError`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "AcceptanceProfile",
    "Expansion",
    "ProfileCounter",
    "ProfileMismatchError",
    "TokenTree",
    "TopKDrafter",
    "TopKUnavailableError",
    "TreeShape",
    "adaptive_width_tree",
    "best_first_tree",
    "check_budget",
    "dynamic_tree",
    "expected_accepted",
    "instantiate_shape",
    "opt_tree",
    "require_topk",
    "sequoia_shape",
    "sequoia_value",
]


# -- the drafter contract ----------------------------------------------------------------------
@dataclass(frozen=True)
class Expansion:
    """A drafter's answer for ``n`` nodes: ``tokens[i, j]`` is node ``i``'s ``j``-th most likely
    next token and ``probs[i, j]`` its draft probability (descending in ``j``). ``dists`` (only
    when asked) holds each node's whole draft distribution under the request's sampling, ``[n, V]``
    (a torch tensor), for verifiers that need ``q``."""

    tokens: np.ndarray  # [n, k] int64 target ids
    probs: np.ndarray  # [n, k] float64
    dists: Any = None  # [n, V] torch tensor, or None


@runtime_checkable
class TopKDrafter(Protocol):
    """A drafter that gives top-k continuations with probabilities for a batch of tree nodes.

    One object per draft step, positioned at the root (the last committed token). ``expand(nodes,
    token_ids, parents, k)``: ``nodes`` are ``-1`` (the root) or indices into ``token_ids`` /
    ``parents``, the tree drafted so far (parents before children; ``-1`` = the root); returns an
    :class:`Expansion` with ``k`` children per node. A node must be expanded after its parent.
    ``max_k`` is the largest ``k`` it can give (its vocabulary).
    """

    max_k: int

    def expand(self, nodes: Sequence[int], token_ids: Sequence[int], parents: Sequence[int], k: int,
               with_dists: bool = False) -> Expansion: ...


class TopKUnavailableError(TypeError):
    """An object asked to serve as a top-k drafter that cannot."""


class ProfileMismatchError(ValueError):
    """A positional acceptance profile measured for another target (or drafter, or temperature)."""


def require_topk(drafter: Any, k: int = 1) -> TopKDrafter:
    """``drafter`` if it can give ``k`` continuations per node, else a clear error."""
    if not callable(getattr(drafter, "expand", None)) or not hasattr(drafter, "max_k"):
        raise TopKUnavailableError(
            f"{type(drafter).__name__} cannot give top-k continuations with probabilities (it has no expand/max_k); "
            "tree methods need a draft model (option draft_model or draft_layers) or a trained EAGLE head (source=eagle)")
    if k > int(drafter.max_k):
        raise TopKUnavailableError(f"{type(drafter).__name__} gives at most {drafter.max_k} continuations per node; "
                                   f"this tree needs {k}: lower the tree's width")
    return drafter


def check_budget(budget: int) -> int:
    """A node budget must be a whole number >= 1."""
    if isinstance(budget, bool) or int(budget) != budget or budget < 1:
        raise ValueError(f"node budget must be an integer >= 1 (draft nodes per step), got {budget!r}")
    return int(budget)


# -- trees and shapes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenTree:
    """A drafted tree: tokens, parents (``-1`` = root, parents first), each node's cumulative draft
    log-probability, and how many drafter calls it took. ``q`` (optional, ``[n, V]``): the draft
    distribution each node was drawn from (its parent's), for sampling verification."""

    token_ids: np.ndarray
    parents: np.ndarray
    scores: np.ndarray
    expansions: int
    q: Any = None

    def __len__(self) -> int:
        return int(self.token_ids.size)


@dataclass(frozen=True)
class TreeShape:
    """A tree of ranks: node ``i`` is the ``ranks[i]``-th best child (0 = the best) of ``parents[i]``.

    Parents come first, and the children of a node have ranks ``0, 1, ..., m - 1`` (a node can only
    hold its third-best token if it holds the first two: siblings are tried in rank order)."""

    parents: np.ndarray
    ranks: np.ndarray

    def __post_init__(self) -> None:
        parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        ranks = np.asarray(self.ranks, dtype=np.int64).reshape(-1)
        if parents.shape != ranks.shape:
            raise ValueError("a tree shape needs one rank per node")
        seen: dict[int, int] = {}
        for i, (p, r) in enumerate(zip(parents.tolist(), ranks.tolist())):
            if p >= i or p < -1:
                raise ValueError("every node's parent must be -1 or an earlier node")
            if r != seen.get(p, 0):
                raise ValueError(f"node {i}: children of a node must have ranks 0, 1, ... in order")
            seen[p] = r + 1
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "ranks", ranks)

    def __len__(self) -> int:
        return int(self.parents.size)

    @classmethod
    def from_paths(cls, paths: Sequence[Sequence[int]]) -> TreeShape:
        """A shape from rank paths (Medusa's "choices"): ``(0,)`` the best child of the root,
        ``(0, 1)`` its second-best child, ... Sorted by depth, then path; every prefix must be there."""
        ordered = sorted({tuple(int(r) for r in p) for p in paths}, key=lambda p: (len(p), p))
        index = {(): -1}
        parents, ranks = [], []
        for path in ordered:
            if not path or path[:-1] not in index:
                raise ValueError(f"tree path {path} has no parent path {path[:-1]}")
            index[path] = len(parents)
            parents.append(index[path[:-1]])
            ranks.append(path[-1])
        return cls(np.asarray(parents), np.asarray(ranks))

    @classmethod
    def chain(cls, n: int) -> TreeShape:
        return cls(np.arange(n) - 1, np.zeros(n, dtype=np.int64))

    def depths(self) -> np.ndarray:
        depth = np.zeros(len(self), dtype=np.int64)
        for i, p in enumerate(self.parents.tolist()):
            depth[i] = 1 if p < 0 else depth[p] + 1
        return depth

    def widths(self) -> list[int]:
        """Nodes per depth (depth 1 first)."""
        return np.bincount(self.depths())[1:].tolist() if len(self) else []


def expected_accepted(shape: TreeShape, acceptance: Sequence[float]) -> float:
    """Expected accepted draft tokens of ``shape`` under a positional acceptance vector: the sum over
    nodes of the product of ``acceptance[rank]`` along the node's path (0 beyond the vector)."""
    acc = np.asarray(acceptance, dtype=np.float64)
    value = np.zeros(len(shape))
    for i, (p, r) in enumerate(zip(shape.parents.tolist(), shape.ranks.tolist())):
        a = acc[r] if r < acc.size else 0.0
        value[i] = a * (1.0 if p < 0 else value[p])
    return float(value.sum())


# -- Sequoia's dynamic program -------------------------------------------------------------------
def _children_values(acc: np.ndarray, below: np.ndarray, budget: int, keep_choices: bool = False):
    """Best worth of a node's ranked children sharing at most ``m`` nodes (``m = 0..budget``), a
    child's subtree of ``a`` nodes being worth ``below[a]`` (``-inf``: impossible); child ``j``
    exists only if child ``j - 1`` does. A knapsack over the ranks, last rank first:
    ``g[j][m] = max_a acc[j] * below[a] + g[j + 1][m - a]``. With ``keep_choices`` also the
    ``[ranks, budget + 1]`` table of the best ``a`` (for tracing the shape back)."""
    ranks = min(acc.size, budget)
    neg = -np.inf
    g = np.full(budget + 1, neg)
    g[0] = 0.0
    choices = np.zeros((ranks, budget + 1), dtype=np.int64)
    gs = [None] * (ranks + 1)
    gs[ranks] = g
    sizes = np.arange(1, budget + 1)
    for j in range(ranks - 1, -1, -1):
        # acc[j] * below[a], with impossible sizes (-inf) kept impossible even when acc[j] is 0
        with np.errstate(invalid="ignore"):
            weighted = np.where(np.isinf(below[1 : budget + 1]), -np.inf, acc[j] * below[1 : budget + 1])
        new = np.full(budget + 1, neg)
        new[0] = 0.0  # no child of rank j (and so none of a higher rank)
        for m in range(1, budget + 1):
            vals = weighted[:m] + g[m - 1 :: -1][:m]  # a = 1..m
            a = int(np.argmax(vals))
            if vals[a] > neg:
                new[m], choices[j, m] = vals[a], sizes[a]
        g = gs[j] = new
    if keep_choices:
        return g, choices, gs
    return g


def _subtree_values(acc: np.ndarray, budget: int, depth_limit: int) -> np.ndarray:
    """``sub[d, n]``: the best worth of a subtree of at most ``n`` nodes (its own root counted 1) and
    depth at most ``d``: ``1 + children(n - 1 nodes, depth d - 1)``."""
    sub = np.full((depth_limit + 1, budget + 1), -np.inf)
    sub[:, 0] = 0.0
    for d in range(1, depth_limit + 1):
        children = np.maximum.accumulate(np.where(np.isinf(g := _children_values(acc, sub[d - 1], budget)), 0.0, g))
        sub[d, 1:] = 1.0 + children[:budget]
    return sub


def _prepare(acceptance: Sequence[float], budget: int, max_depth: int | None) -> tuple[np.ndarray, int, int]:
    budget = check_budget(budget)
    acc = np.clip(np.asarray(acceptance, dtype=np.float64).reshape(-1), 0.0, 1.0)
    if acc.size == 0:
        raise ValueError("the positional acceptance vector is empty: measure a profile first")
    depth_limit = budget if max_depth is None else int(max_depth)
    if depth_limit < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    return acc, budget, min(depth_limit, budget)


def sequoia_value(acceptance: Sequence[float], budget: int, max_depth: int | None = None) -> float:
    """The largest expected number of accepted draft tokens of a tree of at most ``budget`` nodes
    (and depth at most ``max_depth``) under the positional acceptance vector (Sequoia's recursion)."""
    acc, budget, depth = _prepare(acceptance, budget, max_depth)
    sub = _subtree_values(acc, budget, depth)
    g = _children_values(acc, sub[depth], budget)
    return float(np.max(np.where(np.isinf(g), 0.0, g)))


def sequoia_shape(acceptance: Sequence[float], budget: int, max_depth: int | None = None) -> TreeShape:
    """The shape of at most ``budget`` nodes (and depth at most ``max_depth``) with the largest
    expected accepted tokens under ``acceptance`` (Sequoia's dynamic program, traced back). Among
    shapes of equal value the one with fewer nodes wins."""
    acc, budget, depth_limit = _prepare(acceptance, budget, max_depth)
    sub = _subtree_values(acc, budget, depth_limit)
    paths: list[tuple[int, ...]] = []

    def place(path: tuple[int, ...], nodes: int, depth: int) -> None:
        """The best children of the node at ``path``: at most ``nodes`` nodes, subtrees of depth <= ``depth``."""
        if nodes <= 0 or depth <= 0:
            return
        g, choices, gs = _children_values(acc, sub[depth], nodes, keep_choices=True)
        values = np.where(np.isinf(g), -1.0, g)
        m = int(np.flatnonzero(values >= values.max() - 1e-12)[0])  # fewest nodes reaching the best
        for rank in range(choices.shape[0]):
            if m == 0:
                break
            size = int(choices[rank, m])
            paths.append(path + (rank,))
            place(path + (rank,), size - 1, depth - 1)
            m -= size

    place((), budget, depth_limit)
    return TreeShape.from_paths(paths)


# -- builders over a drafter ---------------------------------------------------------------------
class _Growing:
    """The tree being drafted: tokens, parents, cumulative log-probabilities, q rows."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.scores: list[float] = []
        self.q: list[Any] = []
        self.expansions = 0

    def score(self, node: int) -> float:
        return 0.0 if node < 0 else self.scores[node]

    def expand(self, drafter: TopKDrafter, nodes: list[int], k: int, with_dists: bool = False) -> Expansion:
        out = drafter.expand(list(nodes), self.tokens, self.parents, k, with_dists)
        self.expansions += 1
        tokens = np.asarray(out.tokens, dtype=np.int64).reshape(len(nodes), -1)[:, :k]
        probs = np.asarray(out.probs, dtype=np.float64).reshape(len(nodes), -1)[:, :k]
        return Expansion(tokens, probs, out.dists)

    def add(self, token: int, parent: int, prob: float, q_row: Any = None) -> int:
        self.tokens.append(int(token))
        self.parents.append(int(parent))
        self.scores.append(self.score(parent) + min(float(np.log(max(prob, 1e-300))), 0.0))
        self.q.append(q_row)
        return len(self.tokens) - 1

    def finish(self, keep: Sequence[int] | None = None) -> TokenTree:
        """The tree of the ``keep`` nodes (default: all), re-indexed in creation order; ``keep`` must
        be closed under parents."""
        keep = sorted(range(len(self.tokens)) if keep is None else {int(i) for i in keep})
        remap = {-1: -1}
        for new, old in enumerate(keep):
            remap[old] = new
        parents = [remap[self.parents[i]] for i in keep]  # KeyError: keep was not closed under parents
        q = None
        if keep and all(self.q[i] is not None for i in keep):
            import torch

            q = torch.stack([self.q[i] for i in keep])
        return TokenTree(np.asarray([self.tokens[i] for i in keep], dtype=np.int64), np.asarray(parents, dtype=np.int64),
                         np.asarray([self.scores[i] for i in keep], dtype=np.float64), self.expansions, q)


def _top_by_score(tree: _Growing, candidates: Sequence[int], n: int) -> list[int]:
    """The ``n`` best of ``candidates`` by cumulative score (ties: older first). Because a child
    never scores above its parent, the best ``n`` of a parent-closed set are parent-closed."""
    cand = np.asarray(list(candidates), dtype=np.int64)
    if cand.size == 0:
        return []
    scores = np.asarray([tree.scores[i] for i in cand.tolist()])
    order = np.lexsort((cand, -scores))
    return sorted(cand[order[:n]].tolist())


def instantiate_shape(drafter: TopKDrafter, shape: TreeShape, with_dists: bool = False) -> TokenTree:
    """Fill ``shape`` with the drafter's tokens: one drafter call per depth (every node of a depth
    that has children is expanded together). With ``with_dists``, each node keeps ``q``, the draft
    distribution of its parent (its tokens are still the parent's top-k, not samples)."""
    if len(shape) == 0:
        return TokenTree(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0)
    require_topk(drafter, int(shape.ranks.max()) + 1)
    tree = _Growing()
    shape_to_tree: dict[int, int] = {-1: -1}
    depths = shape.depths()
    for depth in range(1, int(depths.max()) + 1):
        level = [i for i in range(len(shape)) if depths[i] == depth]
        parents = sorted({int(shape.parents[i]) for i in level})
        k = max(int(shape.ranks[i]) for i in level) + 1
        out = tree.expand(drafter, [shape_to_tree[p] for p in parents], k, with_dists)
        row_of = {p: j for j, p in enumerate(parents)}
        for i in level:
            row, rank = row_of[int(shape.parents[i])], int(shape.ranks[i])
            q_row = out.dists[row] if out.dists is not None else None
            shape_to_tree[i] = tree.add(out.tokens[row, rank], shape_to_tree[int(shape.parents[i])], out.probs[row, rank], q_row)
    return tree.finish()


def dynamic_tree(drafter: TopKDrafter, top_k: int, depth: int, size: int) -> TokenTree:
    """EAGLE-2 (Li et al., arXiv 2406.16858): expand ``depth`` times, ``top_k`` children for each of
    the ``top_k`` best nodes of the last depth, then keep the ``size`` best nodes by cumulative
    draft probability."""
    if top_k < 1 or depth < 1:
        raise ValueError(f"top_k and depth must be >= 1, got {top_k}, {depth}")
    size = check_budget(size)
    require_topk(drafter, top_k)
    tree = _Growing()
    frontier = [-1]
    for level in range(depth):
        out = tree.expand(drafter, frontier, top_k)
        new = [tree.add(t, p, pr) for row, p in enumerate(frontier) for t, pr in zip(out.tokens[row], out.probs[row])]
        if level + 1 < depth:
            frontier = _top_by_score(tree, new, top_k)
    return tree.finish(_top_by_score(tree, range(len(tree.tokens)), size))


def estimated_acceptance(tree: TokenTree) -> float:
    """OPT-Tree's ``E(T)``: the sum of the nodes' cumulative draft probabilities (the expected
    accepted length if the draft's probabilities were the target's)."""
    return float(np.exp(tree.scores).sum()) if len(tree) else 0.0


def opt_tree(drafter: TopKDrafter, budget: int, threshold: float = 0.0, max_depth: int = 16, top_k: int | None = None) -> TokenTree:
    """OPT-Tree (Wang et al., arXiv 2406.17276), Algorithm 1.

    Each round drafts one more depth: every node of the last depth that is in the current tree is
    expanded (one drafter call), its ``top_k`` (default ``budget``) children become candidates, and
    the tree becomes the ``budget`` nodes with the largest cumulative draft probability among all
    drafted nodes, the tree of at most ``budget`` nodes maximising ``E(T)`` over what was drafted.
    Stop when ``E`` grew by less than ``threshold`` (the paper's stopping rule; ``threshold`` trades
    draft time for acceptance), when no node of the new depth made the tree, or at ``max_depth``.
    """
    budget = check_budget(budget)
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    width = min(int(top_k or budget), int(drafter.max_k))
    require_topk(drafter, 1)
    tree = _Growing()
    frontier = [-1]
    kept: list[int] = []
    value = 0.0
    for _ in range(max(1, int(max_depth))):
        out = tree.expand(drafter, frontier, width)
        new = [tree.add(t, p, pr) for row, p in enumerate(frontier) for t, pr in zip(out.tokens[row], out.probs[row])]
        candidate = _top_by_score(tree, kept + new, budget)
        new_value = float(np.exp([tree.scores[i] for i in candidate]).sum())
        grew = new_value - value
        kept, value = candidate, new_value
        frontier = sorted(set(new) & set(kept))
        if grew < threshold or not frontier:
            break
    return tree.finish(kept)


def best_first_tree(drafter: TopKDrafter, budget: int, expand_batch: int = 8, top_k: int = 8, max_calls: int | None = None) -> TokenTree:
    """SpecExec (Svirschevski et al., arXiv 2406.02532): best-first search over cumulative draft
    probability. A heap holds every drafted, not yet expanded node; each drafter call expands the
    ``expand_batch`` most likely of them (``top_k`` children each). The search stops when the
    ``budget`` most likely nodes found are all expanded or cannot change (no unexpanded node is
    likelier than the ``budget``-th best), or after ``max_calls`` calls (default: the budget)."""
    budget = check_budget(budget)
    if expand_batch < 1 or top_k < 1:
        raise ValueError(f"expand_batch and top_k must be >= 1, got {expand_batch}, {top_k}")
    top_k = min(top_k, int(drafter.max_k))
    tree = _Growing()
    heap: list[tuple[float, int]] = []  # (-score, node) of unexpanded nodes
    batch = [-1]
    for _ in range(int(max_calls or budget)):
        out = tree.expand(drafter, batch, top_k)
        for row, p in enumerate(batch):
            for t, pr in zip(out.tokens[row], out.probs[row]):
                node = tree.add(t, p, pr)
                heapq.heappush(heap, (-tree.scores[node], node))
        best = _top_by_score(tree, range(len(tree.tokens)), budget)
        cutoff = min(tree.scores[i] for i in best) if len(best) >= budget else -np.inf
        batch = []
        while heap and len(batch) < expand_batch and -heap[0][0] >= cutoff:
            node = heapq.heappop(heap)[1]
            if len(tree.tokens) and tree.scores[node] >= cutoff:
                batch.append(node)
        batch = [n for n in batch if n in set(best)] if len(best) >= budget else batch
        if not batch:
            break
    return tree.finish(_top_by_score(tree, range(len(tree.tokens)), budget))


def adaptive_width_tree(drafter: TopKDrafter, budget: int, branch_below: float = 0.5, max_width: int = 3,
                        stop_below: float = 0.1, max_depth: int = 16) -> TokenTree:
    """EdgeLLM / LLMCad (Xu et al., arXiv 2309.04255): confidence-adaptive width with a fallback.

    The tree extends the draft's best path one token per drafter call. At each position the draft
    proposes its best token; when its confidence (that token's probability) is below
    ``branch_below``, the next-best tokens join as siblings until their probabilities add up to
    ``branch_below`` or ``max_width`` tokens are there (the paper's branches where the draft is
    unsure). Drafting stops, and the target verifies, when the cumulative confidence of the best
    path falls below ``stop_below`` (the paper's self-adaptive fallback), when the budget is spent
    or at ``max_depth``; if the draft is unsure at the root already the draft is empty and the step
    is plain decoding."""
    budget = check_budget(budget)
    if not 0 <= branch_below <= 1 or not 0 <= stop_below <= 1:
        raise ValueError("branch_below and stop_below are probabilities in [0, 1]")
    if max_width < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")
    width = min(int(max_width), int(drafter.max_k))
    tree = _Growing()
    node = -1
    for _ in range(max(1, int(max_depth))):
        out = tree.expand(drafter, [node], width)
        probs, tokens = out.probs[0], out.tokens[0]
        if float(np.exp(tree.score(node))) * float(probs[0]) < stop_below:
            break  # fallback: the path is too unsure to draft on
        best = tree.add(tokens[0], node, probs[0])
        covered = float(probs[0])
        for j in range(1, width):
            if covered >= branch_below or len(tree.tokens) >= budget:
                break
            tree.add(tokens[j], node, probs[j])
            covered += float(probs[j])
        node = best
        if len(tree.tokens) >= budget:
            break
    return tree.finish(list(range(min(len(tree.tokens), budget))))


# -- positional acceptance profiles --------------------------------------------------------------
@dataclass
class ProfileCounter:
    """Counts, from verified star drafts (the root's top ``K`` children), how often the child of
    rank ``i`` was reached (every better-ranked child rejected) and accepted."""

    width: int
    reached: np.ndarray = field(init=False)
    accepted: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.reached = np.zeros(self.width, dtype=np.int64)
        self.accepted = np.zeros(self.width, dtype=np.int64)

    def add(self, accepted_rank: int | None) -> None:
        """One verified star: the rank of the accepted child, or ``None`` if none was."""
        last = self.width - 1 if accepted_rank is None else int(accepted_rank)
        self.reached[: last + 1] += 1
        if accepted_rank is not None:
            self.accepted[int(accepted_rank)] += 1

    def acceptance(self) -> np.ndarray:
        """``accepted / reached`` per rank (0 where a rank was never reached)."""
        return np.where(self.reached > 0, self.accepted / np.maximum(self.reached, 1), 0.0)


@dataclass(frozen=True)
class AcceptanceProfile:
    """A positional acceptance vector and what it was measured for."""

    acceptance: tuple[float, ...]
    target_fingerprint: str
    drafter: str
    temperature: float
    samples: int

    def check(self, target_fingerprint: str, drafter: str | None = None, temperature: float | None = None) -> AcceptanceProfile:
        """``self`` if it was measured for this target (and drafter, temperature), else an error naming both."""
        if self.target_fingerprint != target_fingerprint:
            raise ProfileMismatchError(
                f"this acceptance profile was measured for target {self.target_fingerprint[:23]}, not for "
                f"{target_fingerprint[:23]}: measure one for this target (the method does so when the option "
                "profile is left empty)")
        if drafter is not None and self.drafter != drafter:
            raise ProfileMismatchError(f"this acceptance profile was measured with drafter {self.drafter!r}, not {drafter!r}")
        if temperature is not None and abs(self.temperature - temperature) > 1e-9:
            raise ProfileMismatchError(f"this acceptance profile was measured at temperature {self.temperature}, not {temperature}")
        return self

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"acceptance": list(self.acceptance), "target_fingerprint": self.target_fingerprint,
                                    "drafter": self.drafter, "temperature": self.temperature, "samples": self.samples}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> AcceptanceProfile:
        data = json.loads(Path(path).read_text())
        return cls(tuple(float(a) for a in data["acceptance"]), str(data["target_fingerprint"]), str(data["drafter"]),
                   float(data["temperature"]), int(data["samples"]))
