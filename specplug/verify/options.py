"""Options of the built-in verifiers (pydantic, torch-free, so the registry validates them cheaply)."""

from __future__ import annotations

from pydantic import Field

from specplug.methods import MethodOptions

__all__ = ["TypicalAcceptanceOptions"]


class TypicalAcceptanceOptions(MethodOptions):
    """Medusa's thresholds for typical acceptance."""

    posterior_threshold: float = Field(0.09, gt=0, le=1, description="epsilon: the hard acceptance threshold")
    posterior_alpha: float = Field(0.3, gt=0, le=1, description="delta: scale of the entropy-adaptive threshold")
