"""Options of ``draft_verify`` and ``swift`` (pydantic; no torch)."""

from __future__ import annotations

from pydantic import Field, model_validator

from specplug.methods import MethodOptions

__all__ = ["DraftVerifyOptions", "SwiftOptions"]


class DraftVerifyOptions(MethodOptions):
    profile: str | None = Field(
        default=None,
        description="Path of a layer-skip profile; default: the cached one for the target's fingerprint "
        "(made by `specplug layerskip calibrate`).",
    )
    threshold: float | None = Field(
        default=None, ge=0, lt=1, description="Stop drafting below this confidence; default: the profile's calibrated one."
    )
    vocab_size: int | None = Field(
        default=None, ge=1,
        description="Project the draft onto the N most frequent tokens of the calibration text (a reduced LM head); "
        "default: the full vocabulary.",
    )
    seed: int = Field(default=0, description="Seed of the draft's own sampling generator (temperature > 0).")


class SwiftOptions(DraftVerifyOptions):
    tree: bool = Field(default=True, description="Expand low-confidence draft positions into top-k siblings (a tree draft).")
    candidates: tuple[int, int, int, int] = Field(
        default=(1, 2, 3, 4),
        description="Candidates per draft position when its confidence is > 0.95, > 0.8, > 0.5, or lower "
        "(SWIFT's confidence-aware expansion; the draft's node budget is the engine's k).",
    )
    optimize: bool = Field(default=True, description="Run SWIFT's on-the-fly layer-set optimisation.")
    context_window: int = Field(default=48, ge=16, description="Committed tokens the matchness score is measured on.")
    min_generated: int = Field(default=16, ge=0, description="Generated tokens a request needs before it optimises.")
    steps_per_request: int = Field(default=8, ge=1, description="Most optimisation iterations in one request.")
    max_iterations: int = Field(default=64, ge=1, description="Most optimisation iterations in the proposer's lifetime.")
    bayes_interval: int = Field(default=4, ge=1, description="Every n-th iteration asks the Bayesian optimiser; the others draw at random.")
    tolerance: int = Field(default=16, ge=1, description="Stop optimising after this many iterations without a better layer set.")
    target_matchness: float = Field(default=0.95, gt=0, le=1, description="Stop optimising once a layer set's matchness reaches this.")

    @model_validator(mode="after")
    def _candidates_positive(self) -> SwiftOptions:
        if min(self.candidates) < 1:
            raise ValueError(f"candidates must all be >= 1, got {list(self.candidates)}")
        return self
