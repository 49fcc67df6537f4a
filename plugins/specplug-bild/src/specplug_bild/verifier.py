"""BiLD's rollback policy as a specplug verifier (lossy by design)."""

from __future__ import annotations

from typing import ClassVar

import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.sampling import check_shapes, process_logits, sample_token

from specplug_bild.policies import BildVerifierOptions

__all__ = ["BildRollbackVerifier", "rollback_distances"]


def rollback_distances(target_logits: torch.Tensor, draft: Draft, sampling: SamplingParams) -> torch.Tensor:
    """[num_nodes] the cross-entropy ``-log p_L(y_i)`` of every draft token under the large model.

    ``p_L`` is the large model's softmax (after temperature when sampling; plain softmax at
    temperature 0, where the paper's greedy decoding compares it with the small model's argmax)."""
    rows = target_logits[: len(draft)].float()  # row i predicts node i
    if not sampling.greedy:
        rows = rows / sampling.temperature
    log_p = torch.log_softmax(rows, dim=-1)
    ids = torch.as_tensor(draft.token_ids, device=rows.device)
    return -log_p.gather(1, ids[:, None])[:, 0]


class BildRollbackVerifier:
    """Keep the small model's tokens up to the first one whose cross-entropy exceeds ``rollback``;
    the large model's own token (argmax, or a sample at temperature > 0) replaces it, or follows the
    whole draft when nothing is rolled back. Chains only (BiLD's small model decodes one sequence)."""

    lossless: ClassVar[bool] = False
    #: verifies chains only: a tree draft is refused with a ValueError naming the tree
    chains_only: ClassVar[bool] = True

    def __init__(self, options: BildVerifierOptions | None = None) -> None:
        self.options = options or BildVerifierOptions()

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        check_shapes(target_logits, draft)
        if not draft.is_chain:
            raise ValueError("the bild verifier checks a chain (the small model's tokens); got a tree draft")
        # padding or an id outside the vocabulary ends the chain (a chain's cleaning keeps a prefix, so
        # node indices and logits rows stay as they are)
        draft = draft.without_invalid(target_logits.shape[-1])
        distances = rollback_distances(target_logits, draft, sampling).tolist()
        kept = next((i for i, d in enumerate(distances) if d > self.options.rollback), len(draft))
        row = target_logits[kept : kept + 1]
        if sampling.greedy:
            large = int(row.argmax(-1))
        else:
            large = sample_token(process_logits(row, sampling)[0], generator)
        tokens = draft.token_ids[:kept].tolist()
        return VerifyResult(list(range(kept)), tokens + [large])
