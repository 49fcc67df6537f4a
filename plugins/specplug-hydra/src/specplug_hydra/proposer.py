"""Hydra drafting in specplug's reference engine (Ankner et al., arXiv 2402.05109).

The heads read the target's final (post-norm) state of the position before the root and the root
(the token that state predicted); head ``k`` also reads the ``k`` tokens drafted before its own, so
every tree node's children are guessed *given that node's path* (:mod:`specplug_hydra.tree`): one
batched head call per depth, no KV cache. ``tree=chain`` drafts each head's top guess given the
chain so far (greedy decoding of the heads).

Verification is the engine's (``tree_verification`` by default): lossless. At temperature > 0 the
nodes are deterministic top-k choices with no ``q``; speculative sampling treats them as one-hot
proposals, which is lossless for any deterministic drafting rule.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.methods import MethodOptions
from specplug.protocols import Draft, ProposalRequest

__all__ = ["HydraOptions", "HydraProposer"]

METHOD = "hydra"


class HydraOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained Hydra heads; default: the folder `specplug train hydra` writes for the "
        "target in specplug's cache")
    tree: Literal["sparse", "chain"] = Field(
        "sparse", description="the sparse candidate tree (each level drafted given its parent's path), or a chain")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="guesses per head the tree may use (the tree's ranks go to 10)")


class HydraProposer(TrainedHeadProposer):
    """Drafts Hydra's tree from the target's last hidden state; see the module docstring."""

    method = METHOD
    head_description = "trained Hydra heads"

    def __init__(self, options: HydraOptions | None = None) -> None:
        super().__init__(options or HydraOptions())
        self._paths: dict[int, list[tuple[int, ...]]] = {}

    def head_loaded(self) -> None:
        self._paths.clear()

    def paths(self, size: int) -> list[tuple[int, ...]]:
        from specplug_hydra.tree import tree_paths

        if size not in self._paths:
            num_heads = self.head.num_heads
            if self.options.tree == "chain":
                self._paths[size] = [(0,) * d for d in range(1, min(size, num_heads) + 1)]
            else:
                self._paths[size] = tree_paths(size, num_heads, self.options.top_k)
        return self._paths[size]

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug_hydra.tree import draft_tree

        hidden = self.root_state(request)
        if hidden is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        paths = self.paths(size) if size > 0 else []
        if not paths:
            return Draft.empty()
        heads = self.head
        param = heads.heads[0].lm_head.weight
        hidden = hidden.to(device=param.device, dtype=param.dtype)
        root = int(request.token_ids[-1])

        def guesses(depth: int, prefixes: list[tuple[int, ...]], top_k: int) -> np.ndarray:
            tokens = torch.tensor([(root, *prefix) for prefix in prefixes], device=param.device)  # [n, depth + 1]
            logits = heads.head_logits(depth, hidden.expand(len(prefixes), -1), tokens)
            return logits.topk(top_k, dim=-1).indices.cpu().numpy()

        with torch.inference_mode():
            tokens, parents = draft_tree(paths, guesses)
        if self.options.tree == "chain":
            return Draft.chain(tokens)
        return Draft(tokens, parents)
