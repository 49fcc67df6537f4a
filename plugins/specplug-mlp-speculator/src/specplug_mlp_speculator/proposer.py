"""MLP speculator drafting in specplug's reference engine (Wertheimer et al., arXiv 2404.19124).

The speculator reads the target's final (post-norm) hidden state of the position before the root and
the root itself (the token that state predicted): stage 0 guesses the first token after the root,
stage ``i`` reads stage ``i - 1``'s state and the token drafted before it. No KV cache: each step is
``n_predict`` small MLP stages over one state.

Two draft shapes:

- ``candidates`` (default, the paper's): each stage keeps its ``top_k_tokens_per_head[i]`` best
  tokens for every surviving prefix (5, 4, 3 for three stages), the ``n_candidates`` complete
  sequences with the highest summed log-probability are kept, and their union is verified as one
  prefix tree (the paper verifies them as a batch of candidates; a tree shares their prefixes);
- ``chain``: each stage's top token, as vLLM's ``mlp_speculator`` drafted.

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

__all__ = ["MLPSpeculatorOptions", "MLPSpeculatorProposer", "candidate_tree"]

METHOD = "mlp_speculator"


class MLPSpeculatorOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of a trained speculator in vLLM's mlp_speculator layout; default: the folder "
        "`specplug train mlp_speculator` writes for the target in specplug's cache")
    tree: Literal["candidates", "chain"] = Field(
        "candidates", description="the paper's top-k candidate sequences merged into a tree, or a chain of each stage's top token")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    n_candidates: int | None = Field(None, ge=1, description="candidate sequences kept; default: the speculator's config (5)")


def candidate_tree(paths: list[tuple[int, ...]], size: int) -> tuple[list[int], list[int]]:
    """The prefix tree of ``paths`` (token sequences, best first) with at most ``size`` nodes:
    ``(tokens, parents)``. A path whose new nodes do not fit is cut to what fits."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    for path in paths:
        for depth in range(1, len(path) + 1):
            prefix = tuple(path[:depth])
            if prefix in index:
                continue
            if len(tokens) == size:
                return tokens, parents
            index[prefix] = len(tokens)
            tokens.append(int(path[depth - 1]))
            parents.append(index[prefix[:-1]] if depth > 1 else -1)
    return tokens, parents


class MLPSpeculatorProposer(TrainedHeadProposer):
    """Drafts with a trained MLP speculator; see the module docstring."""

    method = METHOD
    head_description = "a trained MLP speculator"

    def __init__(self, options: MLPSpeculatorOptions | None = None) -> None:
        super().__init__(options or MLPSpeculatorOptions())

    def propose(self, request: ProposalRequest) -> Draft:
        hidden = self.root_state(request)
        if hidden is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        if size < 1:
            return Draft.empty()
        if self.options.tree == "chain":
            return Draft.chain(self._chain(hidden, int(request.token_ids[-1]), size))
        tokens, parents = candidate_tree(self._candidates(hidden, int(request.token_ids[-1])), size)
        return Draft(np.array(tokens, dtype=np.int64), np.array(parents, dtype=np.int64))

    def _chain(self, hidden, root: int, size: int) -> list[int]:
        import torch

        head = self.head
        param = head.head[0].weight
        tokens: list[int] = []
        with torch.inference_mode():
            state = head.first_state(hidden[None].to(device=param.device, dtype=param.dtype))
            token = torch.tensor([root], device=param.device)
            for i in range(min(size, head.n_predict)):
                state = head.stage(i, state, token)
                token = head.head[i](state).argmax(-1)
                tokens.append(int(token[0]))
        return tokens

    def _candidates(self, hidden, root: int) -> list[tuple[int, ...]]:
        """The ``n_candidates`` best complete sequences (top-k per stage), best first."""
        import torch

        head = self.head
        param = head.head[0].weight
        n_candidates = self.options.n_candidates or head.n_candidates
        with torch.inference_mode():
            state = head.first_state(hidden[None].to(device=param.device, dtype=param.dtype))  # [F, H]
            token = torch.tensor([root], device=param.device)  # [F]
            score = torch.zeros(1, dtype=torch.float64, device=param.device)
            paths = torch.zeros(1, 0, dtype=torch.long, device=param.device)
            for i in range(head.n_predict):
                state = head.stage(i, state, token)
                logp = torch.log_softmax(head.head[i](state).float(), dim=-1)
                k = min(int(head.top_k_tokens_per_head[i]) if i < len(head.top_k_tokens_per_head) else 1, logp.shape[-1])
                values, index = logp.topk(k, dim=-1)  # [F, k]
                score = (score[:, None] + values.double()).reshape(-1)
                paths = torch.cat([paths.repeat_interleave(k, 0), index.reshape(-1, 1)], dim=1)
                state = state.repeat_interleave(k, 0)
                token = index.reshape(-1)
            best = score.argsort(descending=True, stable=True)[:n_candidates]
        return [tuple(int(t) for t in paths[j]) for j in best.tolist()]
