"""specplug hooks of specplug-edgellm: the ``edgellm`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_edgellm.proposer import EdgeLlmOptions, EdgeLlmProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model: the derived draft is a view of (or is checked against) the target
    register(MethodSpec(id="edgellm", factory=EdgeLlmProposer, options=EdgeLlmOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_model})))
