"""FLy's options (pydantic, torch-free)."""

from pydantic import Field

from specplug.methods import MethodOptions

__all__ = ["FlyOptions"]


class FlyOptions(MethodOptions):
    """The entropy gate and the deferred window (specplug's defaults; the paper tunes them once per setting)."""

    entropy_threshold: float = Field(1.0, ge=0, description="a mismatch may be loosely accepted only where the target's "
                                     "entropy (nats, at temperature 1) is at least this")
    window: int = Field(2, ge=1, le=16, description="deferred window: the draft tokens after a mismatch that must all equal "
                        "the target's own choice (given the mismatch) before the mismatch is accepted")
