"""Medusa for specplug: K heads on the target's last hidden state draft a sparse candidate tree."""

from specplug_medusa.proposer import MedusaOptions, MedusaProposer
from specplug_medusa.tree import MEDUSA_TREE_63, candidate_tree, tree_paths

__all__ = ["MEDUSA_TREE_63", "MedusaOptions", "MedusaProposer", "candidate_tree", "tree_paths"]
__version__ = "0.1.0"
