"""EAGLE, EAGLE-2 and EAGLE-3 for specplug: drafting with a trained feature head (see ``proposer``)."""

from specplug_eagle.proposer import (
    Eagle2Options,
    Eagle2Proposer,
    Eagle3Options,
    Eagle3Proposer,
    EagleOptions,
    EagleProposer,
)
from specplug_eagle.tree import DynamicTree, grow_dynamic_tree

__all__ = [
    "DynamicTree",
    "Eagle2Options",
    "Eagle2Proposer",
    "Eagle3Options",
    "Eagle3Proposer",
    "EagleOptions",
    "EagleProposer",
    "grow_dynamic_tree",
]
__version__ = "0.1.0"
