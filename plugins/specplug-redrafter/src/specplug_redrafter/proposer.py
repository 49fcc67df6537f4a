"""ReDrafter drafting in specplug's reference engine (Cheng et al., arXiv 2403.09919).

Each step the recurrent drafter (:mod:`specplug_redrafter.drafter`) reads the target's final state of
the position before the root and runs **beam search** from the root: ``beam_width`` beams of
``beam_length`` tokens, ranked by summed log-probability (one batched RNN step per token).
**Dynamic tree attention**: beams share prefixes (they all start from the few best first tokens), so
the beams are merged into one prefix tree (:func:`beams_to_tree`) and verified in one target pass
with tree attention instead of ``beam_width`` separate candidates; the tree's shape changes every
step with the beams. ``tree_size`` caps the nodes (whole beams are kept best first, the last one cut
to fit). Verification is the engine's (``tree_verification``): lossless.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.methods import MethodOptions
from specplug.protocols import Draft, ProposalRequest

__all__ = ["ReDrafterOptions", "ReDrafterProposer", "beams_to_tree"]

METHOD = "redrafter"


class ReDrafterOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of a trained ReDrafter head; default: the folder `specplug train redrafter` writes "
        "for the target in specplug's cache")
    beam_width: int = Field(4, ge=1, description="beams kept by the beam search")
    beam_length: int | None = Field(None, ge=1, description="tokens per beam; default: the drafter's draft_length")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")


def beams_to_tree(beams: list[tuple[int, ...]], size: int) -> tuple[list[int], list[int]]:
    """Dynamic tree attention's merge: the prefix tree of ``beams`` (best first), at most ``size``
    nodes, as ``(tokens, parents)``; a shared prefix becomes one path of nodes."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    for beam in beams:
        for depth in range(1, len(beam) + 1):
            prefix = tuple(beam[:depth])
            if prefix in index:
                continue
            if len(tokens) == size:
                return tokens, parents
            index[prefix] = len(tokens)
            tokens.append(int(beam[depth - 1]))
            parents.append(index[prefix[:-1]] if depth > 1 else -1)
    return tokens, parents


class ReDrafterProposer(TrainedHeadProposer):
    """Beam search with the recurrent drafter, merged into a tree; see the module docstring."""

    method = METHOD
    head_description = "a trained ReDrafter head"

    def __init__(self, options: ReDrafterOptions | None = None) -> None:
        super().__init__(options or ReDrafterOptions())

    def propose(self, request: ProposalRequest) -> Draft:
        hidden = self.root_state(request)
        if hidden is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        if size < 1:
            return Draft.empty()
        beams = self.beam_search(hidden, int(request.token_ids[-1]))
        tokens, parents = beams_to_tree(beams, size)
        return Draft(np.array(tokens, dtype=np.int64), np.array(parents, dtype=np.int64))

    def beam_search(self, hidden, root: int) -> list[tuple[int, ...]]:
        """The ``beam_width`` best continuations of ``beam_length`` tokens, best first."""
        import torch

        head = self.head
        param = head.lm_head.weight
        width = self.options.beam_width
        length = self.options.beam_length or head.draft_length
        with torch.inference_mode():
            h = hidden[None].to(device=param.device, dtype=param.dtype)
            state = head.step(None, torch.tensor([root], device=param.device))  # [B, H]
            scores = torch.zeros(1, dtype=torch.float64, device=param.device)
            beams = torch.zeros(1, 0, dtype=torch.long, device=param.device)
            for _ in range(length):
                logp = torch.log_softmax(head.logits(state, h).float(), dim=-1).double()  # [B, V]
                total = (scores[:, None] + logp).reshape(-1)
                best = total.topk(min(width, total.numel())).indices
                rows, tokens = best // logp.shape[-1], best % logp.shape[-1]
                scores, beams = total[best], torch.cat([beams[rows], tokens[:, None]], dim=1)
                state = head.step(state[rows], tokens)
        return [tuple(int(t) for t in beam) for beam in beams]
