"""Amphista drafting in specplug's reference engine (arXiv 2406.13170).

Per request the staged adaptation layers keep a key/value cache of the committed context: each step
they read the newly committed positions (the target's final state with the token after it), and
their outputs at the position before the root feed the K heads, whose Auto-embedding Block lets
every head attend to every other; one call gives all K depths' candidates (non-autoregressive). The
draft is Medusa's kind of tree (:mod:`specplug_amphista.tree`), or a chain of each head's top token.

Verification is the engine's (``tree_verification`` by default): lossless. At temperature > 0 the
nodes are deterministic top-k choices with no ``q``; speculative sampling treats them as one-hot
proposals, which is lossless for any deterministic drafting rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from specplug.methods import MethodOptions
from specplug.kit.head_proposer import TrainedHeadProposer
from specplug.protocols import Draft, ProposalRequest

__all__ = ["AmphistaOptions", "AmphistaProposer"]

METHOD = "amphista"


class AmphistaOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained Amphista heads; default: the folder `specplug train amphista` writes for "
        "the target in specplug's cache")
    tree: Literal["sparse", "chain"] = Field(
        "sparse", description="Medusa's kind of sparse tree (shaped by the heads' held-out accuracy), or a chain")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    top_k: int = Field(10, ge=1, le=10, description="candidates per head the tree may use")


@dataclass
class _Request:
    cache: Any = None
    fed: int = 0  # positions 0 .. fed - 1 are in the cache
    last: Any = None  # (stage 1, stage 2) features [H] of position fed - 1


class AmphistaProposer(TrainedHeadProposer):
    """Drafts Amphista's tree from the target's final hidden states; see the module docstring."""

    method: ClassVar[str] = METHOD
    head_description: ClassVar[str] = "trained Amphista heads"

    def __init__(self, options: AmphistaOptions | None = None) -> None:
        super().__init__(options or AmphistaOptions())
        self._requests: dict[str, _Request] = {}
        self._paths: dict[int, list[tuple[int, ...]]] = {}

    def head_loaded(self) -> None:
        self._requests.clear()
        self._paths.clear()

    def finish_request(self, request_id: str) -> None:
        super().finish_request(request_id)
        self._requests.pop(request_id, None)

    def paths(self, size: int) -> list[tuple[int, ...]]:
        from specplug_amphista.tree import expected_value_tree

        if size not in self._paths:
            num_heads = self.head.num_heads
            if self.options.tree == "chain":
                self._paths[size] = [(0,) * d for d in range(1, min(size, num_heads) + 1)]
            else:
                accuracy = self.meta.held_out_accuracy
                self._paths[size] = expected_value_tree(size, num_heads, self.options.top_k, accuracy)
        return self._paths[size]

    def propose(self, request: ProposalRequest) -> Draft:
        import torch
        from transformers import DynamicCache

        from specplug_amphista.tree import tree_tokens

        if self.head is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        state = self._requests.setdefault(request.request_id, _Request(cache=DynamicCache()))
        heads = self.head
        states = request.hidden_states
        with torch.inference_mode():
            if states is not None and states.shape[0]:
                if request.hidden_start != state.fed:
                    raise RuntimeError(f"{METHOD}: hidden states arrived for position {request.hidden_start}, "
                                       f"expected {state.fed}")
                n = states.shape[0]
                span = torch.arange(state.fed, state.fed + n, device=heads.fuse.weight.device)
                next_tokens = torch.as_tensor(request.token_ids[state.fed + 1 : state.fed + n + 1], device=span.device)
                stage1, stage2 = heads.adapt_states(states[:, 0].to(heads.dtype)[None], next_tokens[None], span[None],
                                                    past_key_values=state.cache)
                state.fed += n
                state.last = (stage1[0, -1], stage2[0, -1])
            size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
            if state.last is None or state.fed != len(request.token_ids) - 1 or size <= 0:
                return Draft.empty()  # no state of the position before the root (a one-token prompt's first step)
            paths = self.paths(size)
            top = max(p[-1] for p in paths) + 1
            head_states = heads.head_states(state.last[0][None], state.last[1][None])[0]  # [K, H]
            ranked = heads.head_logits(head_states).topk(top, dim=-1).indices.cpu().numpy()
        tokens, parents = tree_tokens(paths, ranked)
        if self.options.tree == "chain":
            return Draft.chain(tokens)
        return Draft(tokens, parents)
