"""OPT-Tree (Jikai Wang, Yi Su, Juntao Li, Qingrong Xia, Zi Ye, Xinyu Duan, Zhefeng Wang, Min Zhang;
arXiv 2406.17276) in specplug's reference engine: each step, the tree of at most ``budget`` nodes
that maximises the expected acceptance length estimated from the draft's own probabilities
(``E(T)``, the sum of the nodes' cumulative draft probabilities), grown one depth per drafter call
and stopped when a depth adds less than ``threshold`` to ``E`` (:func:`specplug.kit.trees.opt_tree`).

Candidates come from a derived draft model (``draft_layers`` or ``draft_model``) or a trained EAGLE
head (``source=eagle3``): any :class:`specplug.kit.trees.TopKDrafter`.
"""

from __future__ import annotations

from pydantic import Field

from specplug.kit.tree_drafting import TreeProposer, TreeSourceOptions
from specplug.protocols import ProposalRequest

__all__ = ["OptTreeOptions", "OptTreeProposer"]


class OptTreeOptions(TreeSourceOptions):
    threshold: float = Field(0.1, ge=0.0, description="stop growing when a new depth raises the expected acceptance length by less than this")
    max_depth: int = Field(12, ge=1, description="deepest the tree may grow")
    top_k: int | None = Field(None, ge=1, description="children drafted per expanded node (None: the budget, as the paper)")


class OptTreeProposer(TreeProposer):
    """See the module docstring."""

    tree_method = "opt_tree"

    def __init__(self, options: OptTreeOptions | None = None) -> None:
        super().__init__(options or OptTreeOptions(draft_layers="0-3"))

    def build_tree(self, drafter, budget: int, request: ProposalRequest):
        from specplug.kit.trees import opt_tree

        o = self.options
        return opt_tree(drafter, budget, o.threshold, o.max_depth, o.top_k)
