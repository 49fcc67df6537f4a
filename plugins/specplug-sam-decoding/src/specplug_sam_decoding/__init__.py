"""SAM-Decoding for specplug: drafts from suffix automata over the request's text and a static corpus."""

from specplug_sam_decoding.proposer import SamOptions, SamProposer, load_corpus

__all__ = ["SamOptions", "SamProposer", "load_corpus"]
__version__ = "0.1.0"
