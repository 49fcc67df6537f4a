"""Tree verification: the longest accepted root-to-node path of a token tree.

Temperature 0: exact greedy match along the tree (:class:`GreedyMatchVerifier`). Otherwise
SpecInfer's multi-branch speculative sampling (:class:`SpeculativeSamplingVerifier`). Lossless.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.greedy import GreedyMatchVerifier
from specplug.verify.speculative import SpeculativeSamplingVerifier

__all__ = ["TreeVerifier"]


class TreeVerifier:
    lossless: ClassVar[bool] = True

    def __init__(self) -> None:
        self._greedy = GreedyMatchVerifier()
        self._sampling = SpeculativeSamplingVerifier()

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        rule = self._greedy if sampling.greedy else self._sampling
        return rule.verify(target_logits, draft, sampling, generator)
