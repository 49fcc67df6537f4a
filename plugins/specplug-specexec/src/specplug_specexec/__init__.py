"""specplug-specexec: SpecExec (Svirschevski et al. 2024): a large tree of the most likely continuations, found by best-first search over the draft's cumulative probabilities."""

from specplug_specexec.proposer import SpecExecOptions, SpecExecProposer

__all__ = ["SpecExecOptions", "SpecExecProposer"]
