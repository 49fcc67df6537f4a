"""Blockwise parallel decoding for specplug (Stern, Shazeer and Uszkoreit, arXiv 1811.03115)."""

from specplug_blockwise.proposer import BlockwiseOptions, BlockwiseProposer

__all__ = ["BlockwiseOptions", "BlockwiseProposer"]
__version__ = "0.1.0"
