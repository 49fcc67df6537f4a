"""Sequoia's hardware-aware optimiser: the node budget that maximises speedup on the machine at hand.

Sequoia (Chen et al., arXiv 2402.12374, section 3.3) picks the tree size from two measured curves:
the expected tokens per step ``1 + G(n)`` of the best tree of ``n`` nodes (its dynamic program over
the positional acceptance vector) and the time ``t(n)`` the target takes to verify ``n`` nodes.
Speedup over plain decoding is ``(1 + G(n)) * t(0) / (t(n) + depth(n) * t_draft)``: more nodes
accept more tokens but, once the hardware is no longer memory-bound, cost more per step. On a GPU
``t(n)`` is flat for small ``n`` and a large tree pays; on a CPU it grows almost linearly and the
optimiser picks a small one. This module is numpy only: costs come in as numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from specplug.kit.trees import check_budget, sequoia_shape, expected_accepted

__all__ = ["BudgetChoice", "CANDIDATE_BUDGETS", "cost_function", "parse_cost_curve", "pick_budget"]

#: the node budgets the optimiser compares (those above the largest allowed are dropped)
CANDIDATE_BUDGETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def parse_cost_curve(text: str) -> dict[int, float]:
    """``"1:2.9,8:3.7,64:3.9"`` (tokens verified per forward : milliseconds) as ``{nodes: seconds}``
    (``nodes = tokens - 1``: the root is verified with the nodes)."""
    curve: dict[int, float] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            tokens, ms = part.split(":")
            tokens_i, ms_f = int(tokens), float(ms)
        except ValueError:
            raise ValueError(f"cost curve entries are TOKENS:MILLISECONDS, e.g. '1:2.9,8:3.7,64:3.9'; got {part!r}") from None
        if tokens_i < 1 or ms_f <= 0:
            raise ValueError(f"cost curve entry {part!r}: tokens must be >= 1 and milliseconds > 0")
        curve[tokens_i - 1] = ms_f / 1000.0
    if 0 not in curve:
        raise ValueError("the cost curve must give the cost of 1 token (plain decoding's step), e.g. '1:2.9,...'")
    return curve


def cost_function(curve: Mapping[int, float]) -> Callable[[int], float]:
    """Seconds to verify ``n`` nodes, linear between the measured sizes (and past the last two)."""
    sizes = np.asarray(sorted(curve), dtype=np.float64)
    costs = np.asarray([curve[int(n)] for n in sizes], dtype=np.float64)

    def cost(n: int) -> float:
        if sizes.size == 1 or n <= sizes[-1]:
            return float(np.interp(n, sizes, costs))
        slope = (costs[-1] - costs[-2]) / (sizes[-1] - sizes[-2])
        return float(costs[-1] + slope * (n - sizes[-1]))

    return cost


@dataclass(frozen=True)
class BudgetChoice:
    """The optimiser's table: per candidate budget the expected tokens per step, tree depth, modelled
    step time and speedup; ``budget`` is the best."""

    budget: int
    rows: tuple[dict, ...]

    @property
    def speedup(self) -> float:
        return next(r["speedup"] for r in self.rows if r["budget"] == self.budget)


def pick_budget(acceptance: Sequence[float], verify_cost: Callable[[int], float], draft_call_s: float,
                max_budget: int = 64, max_depth: int | None = None, candidates: Sequence[int] = CANDIDATE_BUDGETS) -> BudgetChoice:
    """The candidate budget (at most ``max_budget``) with the largest modelled speedup."""
    max_budget = check_budget(max_budget)
    if draft_call_s < 0:
        raise ValueError("draft time per call must be >= 0")
    plain = verify_cost(0)
    rows = []
    for n in sorted({c for c in candidates if c <= max_budget} | {max_budget}):
        shape = sequoia_shape(acceptance, n, max_depth)
        tokens = 1.0 + expected_accepted(shape, acceptance)
        depth = int(shape.depths().max()) if len(shape) else 0
        step = verify_cost(len(shape)) + depth * draft_call_s
        rows.append({"budget": n, "nodes": len(shape), "depth": depth, "tokens_per_step": tokens,
                     "step_s": step, "speedup": tokens * plain / step})
    best = max(rows, key=lambda r: (r["speedup"], -r["budget"]))
    return BudgetChoice(int(best["budget"]), tuple(rows))
