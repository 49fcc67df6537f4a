"""BiLD's two policies (Kim et al., arXiv 2302.07863), engine-free options and the rollback rule.

- **Fallback policy** (the small model's side): the small model decodes while its confidence, its
  largest next-token probability, is at least ``fallback`` (the paper's alpha_FB); at the first
  position where it falls below, control goes to the large model, which produces that token itself.
  In specplug's terms the small model's draft stops *before* that position, and the large model's
  token there is the step's last token.
- **Rollback policy** (the large model's side): the large model runs once, non-autoregressively,
  over every token the small model produced since its last run. Where its distance to a small-model
  token, the cross-entropy ``-log p_L(y)`` of the large model's distribution against the small
  model's (one-hot) prediction, exceeds ``rollback`` (alpha_RB), that token and everything after it
  are rolled back and replaced by the large model's own token. Tokens within the margin are kept
  even where the large model would have chosen another: that is what makes BiLD fast and lossy.

``rollback = 0`` rolls every token back (plain decoding by the large model); a very large
``rollback`` keeps every small-model token (the small model alone, corrected only at fallbacks).
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from specplug.methods import MethodOptions

__all__ = ["BildOptions", "BildVerifierOptions", "DEFAULT_FALLBACK", "DEFAULT_ROLLBACK"]

DEFAULT_FALLBACK = 0.6
"""alpha_FB: hand control to the large model below this small-model confidence (the paper sweeps
about 0.2-0.9; 0.6 is in its reported range)."""
DEFAULT_ROLLBACK = 2.0
"""alpha_RB in nats: roll back a small-model token whose cross-entropy under the large model exceeds
it (the paper sweeps about 1-5 nats)."""


class BildOptions(MethodOptions):
    """The small model and its fallback threshold. Give the small model as ``model`` or ``layers``."""

    model: str | None = Field(
        None, description="The small model: a folder (e.g. from 'specplug models derive smollm2-135m --layers 0-3') or a hub id."
    )
    layers: str | None = Field(
        None, description="Use these decoder layers of the target as the small model (e.g. '0-3'), sharing its weights."
    )
    fallback: float = Field(
        DEFAULT_FALLBACK, description="alpha_FB in [0, 1]: the small model hands over at the first position where "
        "its largest next-token probability is below this."
    )
    max_small_tokens: int | None = Field(
        None, ge=1, description="The most tokens the small model runs before the large model checks them "
        "(None: as many as the engine's k allows)."
    )

    @model_validator(mode="after")
    def _check(self) -> BildOptions:
        if not 0.0 <= self.fallback <= 1.0 or math.isnan(self.fallback):
            raise ValueError(f"fallback must lie in [0, 1] (a probability), got {self.fallback}; the paper uses 0.2-0.9")
        if (self.model is None) == (self.layers is None):
            raise ValueError(
                "give exactly one of 'model' (a small-model folder, e.g. from 'specplug models derive smollm2-135m "
                "--layers 0-3') or 'layers' (e.g. '0-3': those layers of the target)"
            )
        return self


class BildVerifierOptions(MethodOptions):
    """The rollback threshold of the large model."""

    rollback: float = Field(
        DEFAULT_ROLLBACK, description="alpha_RB in nats, >= 0: roll back from the first small-model token y with "
        "-log p_large(y) above this."
    )

    @model_validator(mode="after")
    def _check(self) -> BildVerifierOptions:
        if not self.rollback >= 0.0:  # also refuses NaN
            raise ValueError(f"rollback must be >= 0 nats (a cross-entropy), got {self.rollback}; the paper uses 1-5")
        return self
