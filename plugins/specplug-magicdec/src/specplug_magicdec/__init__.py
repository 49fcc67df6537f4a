"""MagicDec for specplug: self-speculation over a StreamingLLM-style sparse KV cache."""

from specplug_magicdec.proposer import MagicDecOptions, MagicDecProposer, streaming_positions

__all__ = ["MagicDecOptions", "MagicDecProposer", "streaming_positions"]
__version__ = "0.1.0"
