"""LLMA for specplug: copy a span from reference text once the recent output matches it."""

from specplug_llma.proposer import LlmaOptions, LlmaProposer, copy_from_reference

__all__ = ["LlmaOptions", "LlmaProposer", "copy_from_reference"]
__version__ = "0.1.0"
