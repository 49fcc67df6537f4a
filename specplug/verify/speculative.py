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

A node whose id lies outside the vocabulary (vLLM's padding ``-1``) is skipped as if it had never
been proposed, with everything below it: the residual is left alone, so the output stays exact.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.sampling import check_shapes, draft_probs, process_logits, tree_children

__all__ = ["SpeculativeSamplingVerifier", "residual"]

_EPS = 1e-12


def residual(p: np.ndarray, q_row: np.ndarray | None, token: int) -> np.ndarray:
    """``norm(max(0, p - q))`` for a rejected proposal; ``q_row=None`` means one-hot at ``token``."""
    if q_row is None:
        r = p.copy()
        r[token] = 0.0
    else:
        r = np.maximum(p - q_row, 0.0)
    total = float(r.sum())
    if total <= _EPS:  # p == q up to rounding: the proposal is never rejected in exact arithmetic
        return p
    return r / total


def _inverse_cdf(p: np.ndarray, u: float) -> int:
    """The token whose CDF interval holds ``u`` (in [0, 1)); never a zero-probability token."""
    cdf = np.cumsum(p)
    idx = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    idx = min(idx, p.size - 1)
    while p[idx] <= 0.0:  # only reachable by rounding at the top end
        idx -= 1
    return idx


class SpeculativeSamplingVerifier:
    """Lossless rejection sampling for chains and (multi-branch) trees.

    Randomness: one ``torch.rand`` call per verify from ``generator`` (a uniform per draft node, plus
    one for the bonus token), so results are reproducible for a seeded generator. The arithmetic runs
    in float64 numpy: the per-node loop is short, and it keeps tiny residuals exact enough.
    """

    lossless: ClassVar[bool] = True

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        check_shapes(target_logits, draft)
        probs = process_logits(target_logits, sampling).double().cpu().numpy()  # [num_nodes + 1, V]
        q_t = draft_probs(draft, torch.device("cpu"))
        q = None if q_t is None else q_t.double().numpy()  # [num_nodes, V] or None
        device = generator.device if generator is not None else "cpu"
        u = torch.rand(len(draft) + 1, generator=generator, device=device, dtype=torch.float64).cpu().numpy()
        children = tree_children(draft, probs.shape[-1])  # ids outside the vocabulary: no draft
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
                if px > 0.0 and u[child] * qx < px:  # u < p(x) / q(x)
                    accepted.append(child)
                    row = child + 1
                    p = probs[row]
                    moved = True
                    break
                p = residual(p, q_row, x)
            if not moved:
                bonus = _inverse_cdf(p, float(u[-1]))
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [bonus])
