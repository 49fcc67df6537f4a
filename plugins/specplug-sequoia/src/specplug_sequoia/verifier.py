"""Sequoia's sampling-without-replacement verification (Chen et al., arXiv 2402.12374, Algorithm 1).

Sequoia draws the children of a node *without replacement* from the draft's distribution ``q`` (no
two siblings share a token, so a wide tree never wastes nodes on duplicates, which is what makes it
robust at every temperature). SpecInfer's rule assumes siblings drawn independently and would be
biased here. The exact rule walks the children in the order drawn, with a working ``q`` per node:

- accept child ``x`` with probability ``min(1, p(x) / q(x))``;
- otherwise ``p <- norm(max(p - q, 0))`` **and** ``q <- q`` without ``x``, renormalised (the next
  sibling was drawn from exactly that distribution);
- no child accepted: the bonus token is drawn from the current ``p``.

Each node's ``q`` row in :attr:`Draft.probs` is the distribution its *parent* drew it from (every
sibling carries the same row). Temperature 0: greedy match along the tree. A draft without ``q``
(deterministic top-k children) is verified with SpecInfer's one-hot rule, which is exact for it.

``update_q=False`` is the wrong-residual control the tests must reject: SpecInfer's residual
without removing the rejected token from ``q``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from specplug.methods import MethodOptions
from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.greedy import GreedyMatchVerifier
from specplug.verify.sampling import check_shapes, draft_probs, process_logits, tree_children
from specplug.verify.speculative import SpeculativeSamplingVerifier, _inverse_cdf

__all__ = ["SequoiaVerifier"]

_EPS = 1e-12


def _normalised(x: np.ndarray) -> np.ndarray | None:
    total = float(x.sum())
    return None if total <= _EPS else x / total


class SequoiaVerifier:
    """Lossless verification of trees whose siblings were sampled without replacement."""

    lossless: ClassVar[bool] = True

    def __init__(self, options: MethodOptions | None = None, update_q: bool = True) -> None:
        self.update_q = update_q
        self._greedy = GreedyMatchVerifier()
        self._one_hot = SpeculativeSamplingVerifier()

    def verify(self, target_logits: torch.Tensor, draft: Draft, sampling: SamplingParams,
               generator: torch.Generator | None = None) -> VerifyResult:
        if sampling.greedy:
            return self._greedy.verify(target_logits, draft, sampling, generator)
        if draft.probs is None:
            return self._one_hot.verify(target_logits, draft, sampling, generator)
        check_shapes(target_logits, draft)
        probs = process_logits(target_logits, sampling).double().cpu().numpy()  # [num_nodes + 1, V]
        q_all = draft_probs(draft, torch.device("cpu")).double().numpy()  # [num_nodes, V]
        u = torch.rand(len(draft) + 1, generator=generator, dtype=torch.float64).numpy()
        children = tree_children(draft, probs.shape[-1])
        tokens = draft.token_ids.tolist()
        accepted: list[int] = []
        row, p = 0, probs[0]
        while True:
            moved = False
            q = q_all[children[row][0]].copy() if children[row] else None
            for child in children[row]:
                x = tokens[child]
                qx = float(q[x])
                px = float(p[x])
                if qx <= 0.0:  # x could not have been drawn: an inconsistent draft; skip it safely
                    continue
                if px > 0.0 and u[child] * qx < px:  # u < p(x) / q(x)
                    accepted.append(child)
                    row, p = child + 1, probs[child + 1]
                    moved = True
                    break
                r = _normalised(np.maximum(p - q, 0.0))
                p = p if r is None else r
                if self.update_q:
                    q[x] = 0.0
                    nq = _normalised(q)
                    if nq is None:
                        break
                    q = nq
            if not moved:
                bonus = _inverse_cdf(p, float(u[-1]))
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [bonus])
