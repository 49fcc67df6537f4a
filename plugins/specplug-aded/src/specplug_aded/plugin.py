"""specplug hooks of the ``aded`` plugin (entry point ``aded`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_aded.proposer import AdedOptions, AdedProposer


@hookimpl
def specplug_register_methods(register):
    # Draft trees (the MCTS's most visited nodes); vLLM level 1 verifies the most visited path.
    register(MethodSpec(id="aded", factory=AdedProposer, options=AdedOptions, max_k=None, tree=True))
