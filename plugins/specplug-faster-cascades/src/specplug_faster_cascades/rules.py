"""Options and the deferral rules of speculative cascades (Narasimhan et al., arXiv 2405.19261), engine-free.

A cascade answers with the small model unless a deferral rule sends the position to the large model.
Speculative cascades run the rule inside speculative execution: the small model drafts, the large model
scores every drafted position in one forward, and each position is verified against the *cascade's*
distribution ``pi = q`` (kept: the small model's token stands) or ``pi = p`` (deferred: ordinary
speculative sampling against the large model). Deferral rules at one position, with ``q`` and ``p`` the
small and large models' next-token distributions:

- ``chow``: defer when ``max q < 1 - alpha`` (the small model is unsure);
- ``diff``: defer when ``max q < max p - alpha`` (the large model is surer by more than alpha);
- ``opt``: defer when ``max q < max p - alpha * TV(p, q)`` (the paper's optimal rule for its
  deferral-cost objective, with total variation as the cost of deferring).

``alpha`` trades quality for speed: more deferral is closer to the large model's own output.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from specplug.methods import MethodOptions

__all__ = ["CascadeDrafterOptions", "DeferralOptions", "defers"]


class CascadeDrafterOptions(MethodOptions):
    """The small model: layers of the target or a model folder with its tokenizer."""

    model: str | None = Field(None, description="The small model's folder (e.g. from 'specplug models derive') or a hub id.")
    layers: str | None = Field(None, description="Use these decoder layers of the target as the small model (e.g. '0-3').")
    seed: int = Field(0, description="Seed of the small model's sampling at temperature > 0.")

    @model_validator(mode="after")
    def _one_source(self) -> CascadeDrafterOptions:
        if (self.model is None) == (self.layers is None):
            raise ValueError("give exactly one of 'model' (a small-model folder) or 'layers' (e.g. '0-11,18-29': layers of the target)")
        return self


class DeferralOptions(MethodOptions):
    """The deferral rule and its threshold."""

    rule: Literal["chow", "diff", "opt"] = Field("opt", description="chow, diff or opt (see the module docstring).")
    alpha: float = Field(0.2, description="The deferral threshold in [0, 1].")

    @model_validator(mode="after")
    def _check(self) -> DeferralOptions:
        if not 0.0 <= self.alpha <= 1.0 or math.isnan(self.alpha):
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        return self


def defers(rule: str, alpha: float, max_q: float, max_p: float, tv: float) -> bool:
    """Whether the position goes to the large model."""
    if rule == "chow":
        return max_q < 1.0 - alpha
    if rule == "diff":
        return max_q < max_p - alpha
    if rule == "opt":
        return max_q < max_p - alpha * tv
    raise ValueError(f"unknown deferral rule {rule!r}: use chow, diff or opt")
