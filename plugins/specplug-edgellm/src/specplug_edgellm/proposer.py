"""EdgeLLM, preprint title LLMCad (Daliang Xu, Wangsong Yin, Xin Jin, Ying Zhang, Shiyun Wei,
Mengwei Xu, Xuanzhe Liu; arXiv 2309.04255) in specplug's reference engine: the draft follows its
best path and branches (adds its next-best tokens) where its confidence is below ``branch_below``,
at most ``max_width`` wide; it stops drafting, handing over to the target, when the path's
cumulative confidence falls below ``stop_below`` (an empty draft is a plain decoding step)
(:func:`specplug.kit.trees.adaptive_width_tree`). The paper's on-device scheduling (keeping the
small model resident, overlapping the large model's weight loading with drafting, provisional
token emission) is out of scope: specplug runs both models in one process.

Candidates come from a derived draft model (``draft_layers`` or ``draft_model``) or a trained EAGLE
head (``source=eagle3``): any :class:`specplug.kit.trees.TopKDrafter`.
"""

from __future__ import annotations

from pydantic import Field

from specplug.kit.tree_drafting import TreeProposer, TreeSourceOptions
from specplug.protocols import ProposalRequest

__all__ = ["EdgeLlmOptions", "EdgeLlmProposer"]


class EdgeLlmOptions(TreeSourceOptions):
    branch_below: float = Field(0.6, ge=0.0, le=1.0, description="add siblings where the draft's confidence is below this (until the tokens cover it)")
    max_width: int = Field(3, ge=1, description="most candidates at one position")
    stop_below: float = Field(0.05, ge=0.0, le=1.0, description="stop drafting when the best path's cumulative confidence falls below this (fallback to the target)")
    max_depth: int = Field(12, ge=1, description="deepest the tree may grow")


class EdgeLlmProposer(TreeProposer):
    """See the module docstring."""

    tree_method = "edgellm"

    def __init__(self, options: EdgeLlmOptions | None = None) -> None:
        super().__init__(options or EdgeLlmOptions(draft_layers="0-3"))

    def build_tree(self, drafter, budget: int, request: ProposalRequest):
        from specplug.kit.trees import adaptive_width_tree

        o = self.options
        return adaptive_width_tree(drafter, budget, o.branch_below, o.max_width, o.stop_below, o.max_depth)
