"""specplug-opt-tree: OPT-Tree (Wang et al. 2024): the draft tree that maximises expected acceptance length, grown greedily each step under a node budget with its stopping rule."""

from specplug_opt_tree.proposer import OptTreeOptions, OptTreeProposer

__all__ = ["OptTreeOptions", "OptTreeProposer"]
