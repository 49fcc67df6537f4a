"""FALCON drafting in specplug's reference engine (arXiv 2412.12639).

Per request the drafter keeps a key/value cache of the context positions before the last block; each
step it feeds the newly committed positions (inputs ``(f_p, x[p + 1])``), then runs the last ``k``
context positions as one block (bidirectional among themselves): that single forward gives the
first ``k`` draft depths. Each deeper block is one more forward per block-ending path of the tree
(:mod:`specplug_falcon.tree`), fed the previous block's predicted features and drafted tokens
(semi-autoregressive drafting). The drafter's only attention layer reads per-position keys and
values, so the cached context is exact whatever the mask.

Verification is the engine's (``tree_verification`` by default): lossless. At temperature > 0 the
nodes are deterministic top-k choices with no ``q``; speculative sampling treats them as one-hot
proposals, which is lossless for any deterministic drafting rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.protocols import Draft, ProposalRequest

__all__ = ["FalconOptions", "FalconProposer"]

METHOD = "falcon"


class FalconOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of a trained FALCON drafter; default: the folder `specplug train falcon` writes for "
        "the target in specplug's cache")
    tree: Literal["falcon", "chain"] = Field(
        "falcon", description="FALCON's block tree (k depths per forward, several forwards), or a chain of top-1 tokens")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="candidates per depth the tree may use (its ranks go to 10)")


@dataclass
class _Request:
    """One request's drafter state: every target state handed over, and the cache of positions < ``cached``."""

    states: list = field(default_factory=list)  # [H] tensors, positions 0 .. len - 1
    cache: Any = None
    cached: int = 0


class FalconProposer(TrainedHeadProposer):
    """Drafts FALCON's block tree from the target's final hidden states; see the module docstring."""

    method: ClassVar[str] = METHOD
    head_description: ClassVar[str] = "a trained FALCON drafter"

    def __init__(self, options: FalconOptions | None = None) -> None:
        super().__init__(options or FalconOptions())
        self._requests: dict[str, _Request] = {}
        self.forwards = 0  # drafter forwards run (a block of k depths each), for tests and cost reports

    def head_loaded(self) -> None:
        self._requests.clear()

    def finish_request(self, request_id: str) -> None:
        super().finish_request(request_id)
        self._requests.pop(request_id, None)

    def paths(self, size: int) -> list[tuple[int, ...]]:
        from specplug_falcon.tree import block_tree_paths

        if self.options.tree == "chain":
            return [(0,) * d for d in range(1, size + 1)]
        return block_tree_paths(size, self.options.top_k)

    # -- drafting -------------------------------------------------------------------------------------
    def _feed(self, state: _Request, tokens: np.ndarray, upto: int) -> None:
        """Bring the cache to exactly positions ``0 .. upto - 1`` (crop, or feed committed positions)."""
        import torch
        from transformers import DynamicCache

        if state.cache is None:
            state.cache = DynamicCache()
        if state.cached > upto:
            state.cache.crop(upto)
            state.cached = upto
        if state.cached < upto:
            span = range(state.cached, upto)
            param = self.head.layers[0].mlp.down_proj.weight
            feats = torch.stack([state.states[p] for p in span]).to(device=param.device, dtype=param.dtype)[None]
            ids = torch.as_tensor(tokens[state.cached + 1 : upto + 1], device=param.device)[None]
            pos = torch.arange(state.cached, upto, device=param.device)[None]
            self.head(ids, feats, pos, past_key_values=state.cache)
            state.cached = upto

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug_falcon.tree import draft_block_tree

        if self.head is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        state = self._requests.setdefault(request.request_id, _Request())
        if request.hidden_states is not None and request.hidden_states.shape[0]:
            if request.hidden_start != len(state.states):
                raise RuntimeError(f"{METHOD}: hidden states arrived for position {request.hidden_start}, expected "
                                   f"{len(state.states)}")
            state.states.extend(request.hidden_states[:, 0])
        k = self.head.block_size
        root = len(request.token_ids) - 1
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        if root < k or len(state.states) != root or size <= 0:
            return Draft.empty()  # the first block needs the states of the k positions before the root
        paths = self.paths(size)
        tokens = np.asarray(request.token_ids)
        head = self.head
        param = head.layers[0].mlp.down_proj.weight
        blocks: dict[tuple[int, ...], tuple[Any, Any]] = {}  # block-ending path -> (cache after it, its output features)

        def forward(prefix: tuple[int, ...], prefix_tokens: tuple[int, ...], top: int) -> np.ndarray:
            self.forwards += 1
            if not prefix:  # block 0: the last k context positions, one forward
                self._feed(state, tokens, root - k)
                cache = state.cache
                feats = torch.stack(state.states[root - k : root]).to(device=param.device, dtype=param.dtype)[None]
                ids = torch.as_tensor(tokens[root - k + 1 : root + 1], device=param.device)[None]
                start = root - k
            else:  # block b: fed the previous block's predicted features and the drafted tokens
                parent = prefix[:-k]
                parent_cache, parent_out = blocks[parent]
                cache = copy.deepcopy(parent_cache)
                feats = parent_out
                ids = torch.as_tensor(prefix_tokens[-k:], device=param.device)[None]
                start = root + len(prefix) - k
            pos = torch.arange(start, start + k, device=param.device)[None]
            out = head(ids, feats, pos, past_key_values=cache)
            blocks[prefix] = (cache, out)
            return head.logits(out[0]).topk(top, dim=-1).indices.cpu().numpy()

        with torch.inference_mode():
            drafted, parents, _ = draft_block_tree(paths, k, forward)
        state.cached = int(state.cache.get_seq_length())  # block 0 appended the context's last k positions
        if self.options.tree == "chain":
            return Draft.chain(drafted)
        return Draft(drafted, parents)
