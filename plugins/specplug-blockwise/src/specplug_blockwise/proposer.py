"""Blockwise parallel decoding in specplug's reference engine (Stern et al., arXiv 1811.03115).

The paper's decoding loop is *predict, verify, accept*: ``p_1 .. p_k`` propose a block from one
decoder output, the base model scores the block in one pass, and the longest prefix on which the
proposals equal the base model's own greedy choices is kept. In specplug's engine the target's
verification pass gives the state of the last accepted position and the bonus token (``p_1``'s
prediction: the root); the heads ``p_2 .. p_k`` read that same state and propose the rest of the
block, a chain of ``k - 1`` tokens after the root. That is the paper's "combined scoring and
proposal" (the next block is proposed from the verification pass's own output, with no extra
target call). Greedy matching is exact (the paper's lossless setting); its approximate top-k and
distance-based acceptance (lossy) are left out.
"""

from __future__ import annotations

from pydantic import Field

from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.methods import MethodOptions
from specplug.protocols import Draft, ProposalRequest

__all__ = ["BlockwiseOptions", "BlockwiseProposer"]

METHOD = "blockwise"


class BlockwiseOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained blockwise heads; default: the folder `specplug train blockwise` writes "
        "for the target in specplug's cache")
    tree_size: int | None = Field(None, ge=1, description="most draft tokens per step (at most block_size - 1); "
                                  "default: the engine's k")


class BlockwiseProposer(TrainedHeadProposer):
    """Proposes the rest of a block with ``p_2 .. p_k``; see the module docstring."""

    method = METHOD
    head_description = "trained blockwise heads"

    def __init__(self, options: BlockwiseOptions | None = None) -> None:
        super().__init__(options or BlockwiseOptions())

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        hidden = self.root_state(request)
        if hidden is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens, self.head.block_size - 1)
        if size < 1:
            return Draft.empty()
        param = self.head.heads[0].fc1.weight
        with torch.inference_mode():
            h = hidden.to(device=param.device, dtype=param.dtype)
            tokens = [int(self.head.offset_logits(j, h).argmax()) for j in range(2, size + 2)]
        return Draft.chain(tokens)
