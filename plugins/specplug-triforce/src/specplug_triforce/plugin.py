"""specplug hooks of the ``triforce`` plugin (entry point ``triforce`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_triforce.proposer import TriForceOptions, TriForceProposer


@hookimpl
def specplug_register_methods(register):
    # The middle level is the target's own weights over a retrieval cache the proposer keeps (Need.target_model);
    # it hands the full target one chain per step.
    register(MethodSpec(id="triforce", factory=TriForceProposer, options=TriForceOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))
