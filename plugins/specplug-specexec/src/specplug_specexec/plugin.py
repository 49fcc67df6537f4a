"""specplug hooks of specplug-specexec: the ``specexec`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_specexec.proposer import SpecExecOptions, SpecExecProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model: the derived draft is a view of (or is checked against) the target
    register(MethodSpec(id="specexec", factory=SpecExecProposer, options=SpecExecOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_model})))
