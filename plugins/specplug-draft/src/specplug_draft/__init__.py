"""Speculative decoding with an independent draft model (SpS) for specplug: a smaller causal LM with the
target's tokenizer drafts k tokens; a derived draft is a subset of the target's layers."""

from specplug_draft.proposer import DraftModelError, DraftOptions, DraftProposer, tokenizer_fingerprint

__all__ = ["DraftModelError", "DraftOptions", "DraftProposer", "tokenizer_fingerprint"]
__version__ = "0.1.0"
