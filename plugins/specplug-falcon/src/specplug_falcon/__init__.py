"""FALCON for specplug: a semi-autoregressive draft head, k tokens per forward (arXiv 2412.12639)."""

from specplug_falcon.proposer import FalconOptions, FalconProposer

__all__ = ["FalconOptions", "FalconProposer"]
__version__ = "0.1.0"
