"""Typical acceptance (Cai et al. 2024, Medusa), lossy.

A draft token ``x`` at a position with target distribution ``p`` (temperature applied) is accepted
when ``p(x) > min(epsilon, delta * exp(-H(p)))``: a hard threshold ``epsilon`` and an
entropy-adaptive one (high entropy, lower bar). Medusa's defaults are ``epsilon = 0.09``
(posterior_threshold) and ``delta = 0.3`` (posterior_alpha). On a tree the longest accepted path
wins (ties: the first in draft order). The bonus token is the target's argmax at temperature 0
(then the rule is exactly greedy match) and a sample from ``p`` (with top-k / top-p) otherwise.
The acceptance test itself ignores top-k / top-p (as Medusa's does): a draft token outside the
nucleus can be accepted. Ids outside the vocabulary (vLLM's padding ``-1``) are never accepted.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.greedy import GreedyMatchVerifier
from specplug.verify.sampling import check_shapes, process_logits, sample_token
from specplug.verify.options import TypicalAcceptanceOptions

__all__ = ["TypicalAcceptanceOptions", "TypicalAcceptanceVerifier"]


class TypicalAcceptanceVerifier:
    """Medusa's typical acceptance; lossy (the output distribution differs from the target's)."""

    lossless: ClassVar[bool] = False

    def __init__(self, options: TypicalAcceptanceOptions | None = None):
        self.options = options or TypicalAcceptanceOptions()

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        check_shapes(target_logits, draft)
        if sampling.greedy:
            return GreedyMatchVerifier().verify(target_logits, draft, sampling, generator)
        logits = target_logits.float()
        plain = torch.softmax(logits / sampling.temperature, dim=-1)  # [num_nodes + 1, V]
        entropy = -(plain * torch.log(plain.clamp_min(1e-30))).sum(-1)  # [num_nodes + 1]
        threshold = torch.minimum(
            torch.full_like(entropy, self.options.posterior_threshold),
            self.options.posterior_alpha * torch.exp(-entropy),
        )
        parents = draft.parent_array().tolist()
        tokens = draft.token_ids.tolist()
        valid = draft.in_vocab(logits.shape[-1]).tolist()  # ids outside the vocabulary: no draft
        ok_path = [False] * len(draft)  # node accepted together with all its ancestors
        depth = [0] * len(draft)
        best = -1
        for node, parent in enumerate(parents):
            row = parent + 1
            ok = valid[node] and bool(plain[row, tokens[node]] > threshold[row])
            if ok and (parent < 0 or ok_path[parent]):
                ok_path[node] = True
                depth[node] = 1 if parent < 0 else depth[parent] + 1
                if best < 0 or depth[node] > depth[best]:
                    best = node
        accepted = draft.path_to(best) if best >= 0 else []
        last_row = best + 1
        probs = process_logits(logits[last_row : last_row + 1], sampling)[0]
        bonus = sample_token(probs, generator)
        return VerifyResult(accepted, [tokens[n] for n in accepted] + [bonus])
