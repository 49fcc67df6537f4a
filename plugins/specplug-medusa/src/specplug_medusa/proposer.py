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

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

from specplug_medusa.tree import tree_paths

__all__ = ["MedusaOptions", "MedusaProposer"]


def default_head_dir(target_model) -> Path:
    """The folder ``specplug train medusa`` writes for ``target_model``: ``<cache>/heads/<fingerprint>/medusa``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), "medusa")


class MedusaOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained Medusa heads in vLLM's layout; default: the folder `specplug train medusa` "
        "writes for the target in specplug's cache")
    tree: Literal["sparse", "chain"] = Field(
        "sparse", description="the paper's sparse candidate tree, or a chain of each head's top guess")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="guesses per head the tree may use (the paper's tree uses 10)")


class MedusaProposer(BaseProposer):
    """Drafts Medusa's candidate tree from the target's last hidden state."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)

    def __init__(self, options: MedusaOptions | None = None) -> None:
        self.options = options or MedusaOptions()
        self.heads = None
        self.meta: Any = None
        self.num_heads = 0
        self._bound = None
        self._last: dict[str, tuple[int, Any]] = {}  # request -> (position, final hidden state [H])
        self._paths: dict[int, list[tuple[int, ...]]] = {}

    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        return default_head_dir(info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError("medusa needs the target model from the engine (to check the heads were trained for it); "
                             "run it in specplug's reference engine, or use vLLM 0.32's native 'medusa' method")
        if self._bound is info.model and self.heads is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no trained Medusa heads at {folder}. Make them: `specplug train data --model MODEL --out DATA` then "
                "`specplug train medusa --model MODEL --data DATA`, or pass the option head=DIR")
        from specplug.kit.heads import load_head

        heads, meta = load_head(folder, info.model)
        method = meta["method"] if isinstance(meta, dict) else getattr(meta, "method", None)
        if method != "medusa":
            raise ValueError(f"the head in {folder} was trained for {method!r}; medusa needs Medusa heads "
                             "(`specplug train medusa ...`)")
        self.heads, self.meta, self._bound = heads.eval(), meta, info.model
        self.num_heads = int(getattr(heads, "num_heads", None) or len(heads.heads))
        self._last.clear()
        self._paths.clear()

    def finish_request(self, request_id: str) -> None:
        self._last.pop(request_id, None)

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

        if self.heads is None:
            raise RuntimeError("medusa: bind_target was not called; the engine must bind a target first")
        states = request.hidden_states
        if states is not None and states.shape[0]:
            self._last[request.request_id] = (request.hidden_start + states.shape[0] - 1, states[-1, 0])
        position, hidden = self._last.get(request.request_id, (-1, None))
        if hidden is None or position != len(request.token_ids) - 2:
            return Draft.empty()  # no state of the position before the root (a one-token prompt's first step)
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        paths = self.paths(size)
        if not paths:
            return Draft.empty()
        top_k = max(max(p) for p in paths) + 1
        with torch.inference_mode():
            param = next(self.heads.parameters())
            logits = self.heads(hidden[None].to(device=param.device, dtype=param.dtype))  # [K, 1, V]
            guesses = logits[:, 0].topk(top_k, dim=-1).indices.cpu().numpy()  # [K, top_k]
        tokens, parents = candidate_tree(guesses, paths)
        if self.options.tree == "chain":
            return Draft.chain(tokens)
        return Draft(tokens, parents)
