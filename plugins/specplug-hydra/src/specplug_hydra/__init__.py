"""Hydra for specplug: draft heads that see the tokens drafted before them (arXiv 2402.05109)."""

from specplug_hydra.proposer import HydraOptions, HydraProposer

__all__ = ["HydraOptions", "HydraProposer"]
__version__ = "0.1.0"
