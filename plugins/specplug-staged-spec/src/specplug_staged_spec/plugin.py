"""specplug hooks of specplug-staged-spec: the ``staged_spec`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_staged_spec.proposer import StagedSpecOptions, StagedSpecProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model: the derived draft is a view of (or is checked against) the target
    register(MethodSpec(id="staged_spec", factory=StagedSpecProposer, options=StagedSpecOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_model})))
