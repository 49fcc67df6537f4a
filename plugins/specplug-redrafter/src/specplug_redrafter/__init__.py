"""ReDrafter for specplug: a recurrent draft head, beam search, dynamic tree attention (arXiv 2403.09919)."""

from specplug_redrafter.proposer import ReDrafterOptions, ReDrafterProposer

__all__ = ["ReDrafterOptions", "ReDrafterProposer"]
__version__ = "0.1.0"
