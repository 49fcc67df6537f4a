"""Training-free layer-skip self-speculation for specplug: Draft&Verify (``draft_verify``) and SWIFT (``swift``)."""

from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
from specplug_layerskip.profile import LayerSkipProfile, ProfileError, SkipSet, load_profile, model_fingerprint
from specplug_layerskip.proposer import DraftVerifyProposer, SwiftProposer

__all__ = [
    "DraftVerifyOptions",
    "DraftVerifyProposer",
    "LayerSkipProfile",
    "ProfileError",
    "SkipSet",
    "SwiftOptions",
    "SwiftProposer",
    "load_profile",
    "model_fingerprint",
]
__version__ = "0.1.0"
