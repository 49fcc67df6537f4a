"""TriForce for specplug: a draft model speculates for the target over a retrieval cache, which speculates for the full target."""

from specplug_triforce.proposer import TriForceOptions, TriForceProposer

__all__ = ["TriForceOptions", "TriForceProposer"]
__version__ = "0.1.0"
