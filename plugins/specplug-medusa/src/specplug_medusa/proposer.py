"""Medusa drafting in specplug's reference engine (Cai et al., arXiv 2401.10774).

Medusa-1 puts ``K`` residual heads on the target's final hidden state (after its last norm). Head
``i`` reads the state of the last position the target ran and guesses the token ``i + 2`` places
after it; the target's own LM head gives the next one. In the reference engine that position is the
one before the root (the root is the bonus token the target just chose), so head 0 guesses the
first token after the root, head 1 the second, and so on: one forward of the heads per step, on one
state, with no KV cache and no autoregression. The heads' top guesses are combined into the paper's
sparse candidate tree (:mod:`specplug_medusa.tree`), which the engine verifies with its tree verifier.

Verification: ``tree_verification`` (the engine default) is lossless. Medusa's typical acceptance
(lossy, faster) is the ``typical_acceptance`` verifier of the registry: pass it as the engine's
verifier (``--verifier typical_acceptance``).

Sampling (temperature > 0): the tree's nodes are the heads' deterministic top-k guesses and carry no
``q``; speculative sampling treats each node as a one-hot proposal, which is lossless for any
deterministic drafting rule.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.methods import MethodOptions
from specplug.protocols import Draft, ProposalRequest

from specplug_medusa.tree import tree_paths

__all__ = ["MedusaOptions", "MedusaProposer"]


class MedusaOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained Medusa heads in vLLM's layout; default: the folder `specplug train medusa` "
        "writes for the target in specplug's cache")
    tree: Literal["sparse", "chain"] = Field(
        "sparse", description="the paper's sparse candidate tree, or a chain of each head's top guess")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="guesses per head the tree may use (the paper's tree uses 10)")


class MedusaProposer(TrainedHeadProposer):
    """Drafts Medusa's candidate tree from the target's last hidden state."""

    method = "medusa"
    head_description = "trained Medusa heads"
    elsewhere = ", or use vLLM 0.32's native 'medusa' method"

    def __init__(self, options: MedusaOptions | None = None) -> None:
        super().__init__(options or MedusaOptions())
        self.num_heads = 0
        self._paths: dict[int, list[tuple[int, ...]]] = {}

    def head_loaded(self) -> None:
        self.num_heads = int(getattr(self.head, "num_heads", None) or len(self.head.heads))
        self._paths.clear()

    def paths(self, size: int) -> list[tuple[int, ...]]:
        if size not in self._paths:
            if self.options.tree == "chain":
                self._paths[size] = [(0,) * d for d in range(1, min(size, self.num_heads) + 1)]
            else:
                self._paths[size] = tree_paths(size, self.num_heads, self.options.top_k)
        return self._paths[size]

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug_medusa.tree import candidate_tree

        hidden = self.root_state(request)
        if hidden is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        paths = self.paths(size)
        if not paths:
            return Draft.empty()
        top_k = max(max(p) for p in paths) + 1
        with torch.inference_mode():
            param = next(self.head.parameters())
            logits = self.head(hidden[None].to(device=param.device, dtype=param.dtype))  # [K, 1, V]
            guesses = logits[:, 0].topk(top_k, dim=-1).indices.cpu().numpy()  # [K, top_k]
        tokens, parents = candidate_tree(guesses, paths)
        if self.options.tree == "chain":
            return Draft.chain(tokens)
        return Draft(tokens, parents)
