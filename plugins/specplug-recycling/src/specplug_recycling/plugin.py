"""specplug hooks of specplug-recycling: the ``recycling`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_recycling.proposer import RecyclingOptions, RecyclingProposer


@hookimpl
def specplug_register_methods(register):
    register(
        MethodSpec(
            id="recycling", factory=RecyclingProposer, options=RecyclingOptions, tree=True,
            needs=frozenset({Need.target_topk}),
        )
    )
