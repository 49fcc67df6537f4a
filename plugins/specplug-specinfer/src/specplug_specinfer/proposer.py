"""The ``specinfer`` proposer: SpecInfer's merged token tree over the drafting kit's sources (a
derived draft model or a trained EAGLE head), one tree per step (see :mod:`specplug_specinfer.tree`)."""

from __future__ import annotations

import torch

from specplug.kit.tree_drafting import TreeProposer
from specplug.kit.trees import TokenTree, require_topk
from specplug.protocols import ProposalRequest
from specplug_specinfer.options import SpecInferOptions
from specplug_specinfer.tree import specinfer_tree

__all__ = ["SpecInferOptions", "SpecInferProposer"]


class SpecInferProposer(TreeProposer):
    tree_method = "specinfer"

    def __init__(self, options: SpecInferOptions) -> None:
        super().__init__(options)
        self.generators: dict[str, torch.Generator] = {}

    def start_request(self, request_id: str, prompt_ids) -> None:
        super().start_request(request_id, prompt_ids)
        self.generators[request_id] = torch.Generator().manual_seed(self.options.seed)

    def finish_request(self, request_id: str) -> None:
        super().finish_request(request_id)
        self.generators.pop(request_id, None)

    def build_tree(self, drafter, budget: int, request: ProposalRequest) -> TokenTree:
        greedy = request.sampling is None or request.sampling.greedy
        require_topk(drafter, max(self.options.expansion) if greedy else 1)
        generator = self.generators.setdefault(request.request_id, torch.Generator().manual_seed(self.options.seed))
        return specinfer_tree(drafter, self.options.expansion, budget, greedy, generator)
