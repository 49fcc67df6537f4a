"""SuffixDecoding for specplug: frequency-scored speculation trees from the request and earlier outputs."""

from specplug_suffix.proposer import GlobalCache, SuffixOptions, SuffixProposer

__all__ = ["GlobalCache", "SuffixOptions", "SuffixProposer"]
__version__ = "0.1.0"
