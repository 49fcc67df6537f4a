"""Shared pieces of the verifiers: the target distribution after sampling parameters, sampling and
tree children. Which draft nodes can be accepted at all (ids inside the vocabulary) is the draft's
own business: :meth:`specplug.protocols.Draft.in_vocab`."""

from __future__ import annotations

import numpy as np
import torch

from specplug.protocols import Draft, SamplingParams

__all__ = ["draft_probs", "process_logits", "sample_token", "tree_children"]


def process_logits(logits: torch.Tensor, sampling: SamplingParams) -> torch.Tensor:
    """Probabilities after temperature, top-k and top-p, float32 on the logits' device.

    ``logits``: [N, V]. Returns [N, V], rows summing to 1. At temperature 0 each row is one-hot at
    the argmax (so greedy decoding is the temperature-0 limit of every sampling rule here).
    """
    logits = logits.float()
    if sampling.greedy:
        out = torch.zeros_like(logits)
        out.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
        return out
    scaled = logits / sampling.temperature
    if sampling.top_k and sampling.top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, sampling.top_k, dim=-1).values[..., -1:]  # [N, 1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if sampling.top_p < 1.0:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass strictly before each token
        sorted_p = sorted_p.masked_fill(before >= sampling.top_p, 0.0)  # keep the smallest nucleus
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample_token(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One token id drawn from ``probs`` [V] (on CPU when a CPU generator is given)."""
    if generator is not None and probs.device != generator.device:
        probs = probs.to(generator.device)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def draft_probs(draft: Draft, device: torch.device) -> torch.Tensor | None:
    """The draft's q as a float32 tensor [num_nodes, V], or None for a deterministic draft."""
    if draft.probs is None:
        return None
    q = draft.probs
    q = torch.as_tensor(np.asarray(q) if not isinstance(q, torch.Tensor) else q)
    if q.ndim != 2 or q.shape[0] < len(draft):
        raise ValueError(f"draft probs must be [num_nodes={len(draft)}, vocab], got {tuple(q.shape)}")
    return q[: len(draft)].to(device=device, dtype=torch.float32)


def tree_children(draft: Draft, vocab_size: int | None = None) -> list[list[int]]:
    """``children[0]`` lists the root's children, ``children[i + 1]`` node ``i``'s, in draft order.

    With ``vocab_size``, nodes outside the vocabulary (see :meth:`Draft.in_vocab`) are left out, so a
    walk from the root never reaches them.
    """
    children: list[list[int]] = [[] for _ in range(len(draft) + 1)]
    ok = draft.in_vocab(vocab_size) if vocab_size is not None else None
    for node, parent in enumerate(draft.parent_array().tolist()):
        if ok is None or ok[node]:
            children[parent + 1].append(node)
    return children


def check_shapes(target_logits: torch.Tensor, draft: Draft) -> None:
    if target_logits.ndim != 2 or target_logits.shape[0] != len(draft) + 1:
        raise ValueError(
            f"target_logits must be [num_nodes + 1 = {len(draft) + 1}, vocab], got {tuple(target_logits.shape)}"
        )
