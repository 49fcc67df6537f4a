"""Options of ``cs_drafting`` (engine-free)."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from specplug.methods import MethodOptions

__all__ = ["CascadeOptions", "is_layer_spec"]

_LAYERS = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")


def is_layer_spec(text: str) -> bool:
    """``'0-3'`` or ``'0-11,18-29'``: decoder layers of the target, not a folder."""
    return bool(_LAYERS.match(text))


class CascadeOptions(MethodOptions):
    """The cascade, largest drafter first; the statistical Max-Gram model is always its bottom level."""

    drafters: list[str] = Field(
        default_factory=lambda: ["0-11,18-29"],
        description="Neural drafters from the largest to the smallest, each layers of the target ('0-3') or a "
        "model folder with the target's tokenizer. Drafter i drafts for the target; drafter i+1 drafts for "
        "drafter i (vertical cascade); Max-Gram drafts for the last one.",
    )
    lengths: list[int] = Field(
        default_factory=lambda: [4, 2],
        description="Horizontal cascade: how many draft positions each level fills for the target, in order: "
        "lengths[0] by the first drafter, the next lengths[1] by the next level, ...; one entry per drafter "
        "plus one for Max-Gram (0: that level drafts no positions for the target).",
    )
    inner_k: int = Field(
        3, ge=1, description="Vertical cascade: tokens a lower level proposes to the level above per inner step."
    )
    max_ngram: int = Field(3, ge=1, le=16, description="Max-Gram: the longest suffix it matches.")

    @model_validator(mode="after")
    def _check(self) -> CascadeOptions:
        if not self.drafters:
            raise ValueError(
                "the cascade is empty: give at least one neural drafter in 'drafters' (e.g. ['0-11,18-29'] for layers "
                "of the target, or a draft model folder); for Max-Gram alone use the pld method"
            )
        if any(not d.strip() for d in self.drafters):
            raise ValueError("a drafter in 'drafters' is empty: give layers of the target ('0-3') or a model folder")
        levels = len(self.drafters) + 1
        if len(self.lengths) != levels:
            raise ValueError(
                f"'lengths' needs one entry per level: {len(self.drafters)} drafters + Max-Gram = {levels}, "
                f"got {len(self.lengths)} ({self.lengths})"
            )
        if any(n < 0 for n in self.lengths) or self.lengths[0] < 1:
            raise ValueError(f"'lengths' must be >= 0 with lengths[0] >= 1 (the top drafter drafts first), got {self.lengths}")
        return self
