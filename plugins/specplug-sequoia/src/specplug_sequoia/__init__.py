"""specplug-sequoia: Sequoia's dynamic-programming token tree, hardware-aware budget and
sampling-without-replacement verifier (arXiv 2402.12374) for specplug's reference engine."""

from specplug_sequoia.optimizer import pick_budget
from specplug_sequoia.proposer import SequoiaOptions, SequoiaProposer
from specplug_sequoia.verifier import SequoiaVerifier

__all__ = ["SequoiaOptions", "SequoiaProposer", "SequoiaVerifier", "pick_budget"]
