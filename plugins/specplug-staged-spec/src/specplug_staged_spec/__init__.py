"""specplug-staged-spec: staged speculative decoding (Spector & Re 2023): a tree-structured draft batch, and
a backoff n-gram speculating the draft model's own generation."""

from specplug_staged_spec.ngram import BackoffNgram
from specplug_staged_spec.proposer import StagedSpecOptions, StagedSpecProposer
from specplug_staged_spec.tree import StagedStats, staged_tree

__all__ = ["BackoffNgram", "StagedSpecOptions", "StagedSpecProposer", "StagedStats", "staged_tree"]
