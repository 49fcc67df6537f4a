"""SpecExec (Ruslan Svirschevski, Avner May, Zhuoming Chen, Beidi Chen, Zhihao Jia, Max Ryabinin;
arXiv 2406.02532) in specplug's reference engine: the draft tree is the ``budget`` most likely
continuations under the draft, found by best-first search over cumulative draft probability
(a priority queue; each drafter call expands the ``expand_batch`` likeliest unexpanded nodes,
:func:`specplug.kit.trees.best_first_tree`). The tree is verified by the tree verifier: greedy
match, or at temperature > 0 the one-hot rule (accept a child with probability ``p(x)``, else
remove it and try the next), which accepts with the same probabilities as SpecExec's "sample from
the target and look the token up in the tree".

Candidates come from a derived draft model (``draft_layers`` or ``draft_model``) or a trained EAGLE
head (``source=eagle3``): any :class:`specplug.kit.trees.TopKDrafter`.
"""

from __future__ import annotations

from pydantic import Field

from specplug.kit.tree_drafting import TreeProposer, TreeSourceOptions
from specplug.protocols import ProposalRequest

__all__ = ["SpecExecOptions", "SpecExecProposer"]


class SpecExecOptions(TreeSourceOptions):
    expand_batch: int = Field(8, ge=1, description="unexpanded nodes expanded per drafter call (the likeliest first)")
    top_k: int = Field(8, ge=1, description="children drafted per expanded node")
    max_calls: int | None = Field(None, ge=1, description="most drafter calls per step (None: the budget)")


class SpecExecProposer(TreeProposer):
    """See the module docstring."""

    tree_method = "specexec"

    def __init__(self, options: SpecExecOptions | None = None) -> None:
        super().__init__(options or SpecExecOptions(draft_layers="0-3"))

    def build_tree(self, drafter, budget: int, request: ProposalRequest):
        from specplug.kit.trees import best_first_tree

        o = self.options
        return best_first_tree(drafter, budget, o.expand_batch, o.top_k, o.max_calls)
