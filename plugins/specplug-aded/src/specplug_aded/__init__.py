"""ADED for specplug: an adaptive tri-gram table and MCTS exploration of draft trees."""

from specplug_aded.proposer import AdedOptions, AdedProposer

__all__ = ["AdedOptions", "AdedProposer"]
__version__ = "0.1.0"
