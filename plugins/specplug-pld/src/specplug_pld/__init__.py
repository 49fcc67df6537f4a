"""Prompt lookup decoding (PLD) for specplug: draft the continuation of an earlier n-gram match."""

from specplug_pld.proposer import PldOptions, PldProposer, find_ngram_continuation

__all__ = ["PldOptions", "PldProposer", "find_ngram_continuation"]
__version__ = "0.1.0"
