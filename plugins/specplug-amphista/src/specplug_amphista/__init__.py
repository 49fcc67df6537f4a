"""Amphista for specplug: non-autoregressive heads that attend to each other (arXiv 2406.13170)."""

from specplug_amphista.proposer import AmphistaOptions, AmphistaProposer

__all__ = ["AmphistaOptions", "AmphistaProposer"]
__version__ = "0.1.0"
