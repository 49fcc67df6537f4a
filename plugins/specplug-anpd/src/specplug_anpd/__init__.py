"""Adaptive n-gram parallel decoding (ANPD) for specplug: drafts from a per-request multi-level n-gram table."""

from specplug_anpd.proposer import AnpdOptions, AnpdProposer, NgramTable

__all__ = ["AnpdOptions", "AnpdProposer", "NgramTable"]
__version__ = "0.1.0"
