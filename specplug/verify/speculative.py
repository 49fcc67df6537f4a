"""Speculative sampling (Leviathan et al. 2023; Chen et al. 2023), multi-branch on trees (SpecInfer).

At a position with target distribution ``p`` (after temperature / top-k / top-p) and a child drafted
with token ``x`` from distribution ``q``: accept with probability ``min(1, p(x) / q(x))``; otherwise
replace ``p`` by the residual ``norm(max(0, p - q))`` and try the next sibling. When no child is
accepted the bonus token is drawn from the current residual; after a fully accepted path it is
drawn from ``p`` at the last node. The output is distributed exactly as sampling from ``p``.

Drafts without probabilities are deterministic proposals: ``q`` is one-hot at ``x``, so ``x`` is
accepted with probability ``p(x)`` and the residual is ``p`` with ``x`` removed. This is lossless for
any deterministic drafting rule (n-gram, retrieval, ...). For drafts with probabilities on trees,
each sibling must have been drawn independently from its own ``q`` row (SpecInfer's condition).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.sampling import check_shapes, draft_probs, process_logits, sample_token, tree_children, uniform

__all__ = ["SpeculativeSamplingVerifier", "residual"]

_EPS = 1e-12


def residual(p: torch.Tensor, q_row: torch.Tensor | None, token: int) -> torch.Tensor:
    """``norm(max(0, p - q))`` for a rejected proposal; ``q_row=None`` means one-hot at ``token``."""
    if q_row is None:
        r = p.clone()
        r[token] = 0.0
    else:
        r = torch.clamp(p - q_row, min=0.0)
    total = float(r.sum())
    if total <= _EPS:  # p == q up to rounding: the proposal is never rejected in exact arithmetic
        return p
    return r / total


class SpeculativeSamplingVerifier:
    """Lossless rejection sampling for chains and (multi-branch) trees."""

    lossless: ClassVar[bool] = True

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        check_shapes(target_logits, draft)
        device = generator.device if generator is not None else torch.device("cpu")
        probs = process_logits(target_logits, sampling).to(device)  # [num_nodes + 1, V]
        q = draft_probs(draft, device)  # [num_nodes, V] or None
        children = tree_children(draft)
        tokens = draft.token_ids.tolist()
        accepted: list[int] = []
        row = 0
        p = probs[0]
        while True:
            moved = False
            for child in children[row]:
                x = tokens[child]
                q_row = None if q is None else q[child]
                qx = 1.0 if q_row is None else float(q_row[x])
                if qx <= 0.0:  # inconsistent draft probs: treat this proposal as deterministic
                    q_row, qx = None, 1.0
                px = float(p[x])
                if px > 0.0 and uniform(generator) * qx < px:  # u < p(x) / q(x)
                    accepted.append(child)
                    row = child + 1
                    p = probs[row]
                    moved = True
                    break
                p = residual(p, q_row, x)
            if not moved:
                bonus = sample_token(p, generator)
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [bonus])
