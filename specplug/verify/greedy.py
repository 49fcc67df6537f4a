"""Exact match: keep draft tokens while they equal the target's own token."""

from __future__ import annotations

from typing import ClassVar

import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.sampling import check_shapes, process_logits, sample_token, tree_children

__all__ = ["GreedyMatchVerifier"]


class GreedyMatchVerifier:
    """Accept the longest draft path whose tokens equal the target's token at each position.

    At temperature 0 the target's token is its argmax. At temperature > 0 the target's token at each
    visited position is *sampled* from the target's distribution and the draft is kept while it
    matches the sample; the emitted tokens are then exactly the target's own samples, so this rule
    is lossless at any temperature (it simply accepts less often than speculative sampling).
    Works on chains and trees (at each node, the first child whose token matches is followed).
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
        children = tree_children(draft, target_logits.shape[-1])  # ids outside the vocabulary: no draft
        tokens = draft.token_ids.tolist()
        if sampling.greedy:
            targets = target_logits.argmax(-1).tolist()  # [num_nodes + 1]

            def target_at(row: int) -> int:
                return targets[row]
        else:
            probs = process_logits(target_logits, sampling)

            def target_at(row: int) -> int:
                return sample_token(probs[row], generator)

        accepted: list[int] = []
        row = 0  # the row of the current position: 0 = root, i + 1 = node i
        while True:
            want = target_at(row)
            nxt = next((c for c in children[row] if tokens[c] == want), None)
            if nxt is None:
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [want])
            accepted.append(nxt)
            row = nxt + 1
