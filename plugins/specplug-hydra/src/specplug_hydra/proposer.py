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

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["HydraOptions", "HydraProposer"]

METHOD = "hydra"


def default_head_dir(target_model) -> Path:
    """The folder ``specplug train hydra`` writes for ``target_model``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), METHOD)


class HydraOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained Hydra heads; default: the folder `specplug train hydra` writes for the "
        "target in specplug's cache")
    tree: Literal["sparse", "chain"] = Field(
        "sparse", description="the sparse candidate tree (each level drafted given its parent's path), or a chain")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="guesses per head the tree may use (the tree's ranks go to 10)")


class HydraProposer(BaseProposer):
    """Drafts Hydra's tree from the target's last hidden state; see the module docstring."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)

    def __init__(self, options: HydraOptions | None = None) -> None:
        self.options = options or HydraOptions()
        self.heads = None
        self.meta: Any = None
        self._bound = None
        self._last: dict[str, tuple[int, Any]] = {}  # request -> (position, final hidden state [H])
        self._paths: dict[int, list[tuple[int, ...]]] = {}

    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        return default_head_dir(info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{METHOD} needs the target model from the engine (the heads share its input embeddings); "
                             "run it in specplug's reference engine")
        if self._bound is info.model and self.heads is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no trained Hydra heads at {folder}. Make them: `specplug train data --model MODEL` then "
                f"`specplug train {METHOD} --model MODEL`, or pass the option head=DIR")
        from specplug.kit.heads import load_head

        heads, meta = load_head(folder, info.model)
        if meta.method != METHOD:
            raise ValueError(f"the head in {folder} was trained for {meta.method!r}; {METHOD} needs Hydra heads "
                             f"(`specplug train {METHOD} ...`)")
        self.heads, self.meta, self._bound = heads.eval(), meta, info.model
        self._last.clear()
        self._paths.clear()

    def finish_request(self, request_id: str) -> None:
        self._last.pop(request_id, None)

    def paths(self, size: int) -> list[tuple[int, ...]]:
        from specplug_hydra.tree import tree_paths

        if size not in self._paths:
            num_heads = self.heads.num_heads
            if self.options.tree == "chain":
                self._paths[size] = [(0,) * d for d in range(1, min(size, num_heads) + 1)]
            else:
                self._paths[size] = tree_paths(size, num_heads, self.options.top_k)
        return self._paths[size]

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug_hydra.tree import draft_tree

        if self.heads is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        states = request.hidden_states
        if states is not None and states.shape[0]:
            self._last[request.request_id] = (request.hidden_start + states.shape[0] - 1, states[-1, 0])
        position, hidden = self._last.get(request.request_id, (-1, None))
        if hidden is None or position != len(request.token_ids) - 2:
            return Draft.empty()  # no state of the position before the root (a one-token prompt's first step)
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        paths = self.paths(size) if size > 0 else []
        if not paths:
            return Draft.empty()
        heads = self.heads
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
