"""specplug hooks of the ``eagle`` plugin (entry point ``eagle`` in group ``specplug``): eagle, eagle2, eagle3."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_eagle.proposer import (
    Eagle2Options,
    Eagle2Proposer,
    Eagle3Options,
    Eagle3Proposer,
    EagleOptions,
    EagleProposer,
)

_NEEDS = frozenset({Need.target_hidden_states})


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the head can draft as deep as the engine's k (or the tree_size option) allows.
    register(MethodSpec(id="eagle", factory=EagleProposer, options=EagleOptions, max_k=None, tree=True, needs=_NEEDS))
    register(MethodSpec(id="eagle2", factory=Eagle2Proposer, options=Eagle2Options, max_k=None, tree=True, needs=_NEEDS))
    register(MethodSpec(id="eagle3", factory=Eagle3Proposer, options=Eagle3Options, max_k=None, tree=True, needs=_NEEDS))
