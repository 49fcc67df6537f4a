"""specplug hooks of the ``medusa`` plugin (entry point ``medusa`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_medusa.proposer import MedusaOptions, MedusaProposer


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k is the tree's node count; the depth is bounded by the heads.
    register(MethodSpec(id="medusa", factory=MedusaProposer, options=MedusaOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))
