"""SpecInfer's options: the draft source (the drafting kit's) and the expansion configuration."""

from __future__ import annotations

from pydantic import Field, field_validator

from specplug.kit.tree_drafting import TreeSourceOptions

__all__ = ["SpecInferOptions"]


class SpecInferOptions(TreeSourceOptions):
    """``expansion[d]``: candidates drawn from the draft at every node of depth ``d`` (SpecInfer's
    expansion configuration ``<k_1, ..., k_m>``); the tree is cut to ``budget`` nodes."""

    expansion: list[int] = Field(default_factory=lambda: [3, 2, 1, 1, 1],
                                 description="candidates per node at each depth (SpecInfer's <k_1, ..., k_m>)")
    seed: int = Field(0, ge=0, description="seed of the draft's sampling at temperature > 0 (per request)")

    @field_validator("expansion")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(int(k) < 1 for k in value):
            raise ValueError(f"expansion must list at least one depth, each >= 1 candidate per node; got {value}")
        return [int(k) for k in value]
