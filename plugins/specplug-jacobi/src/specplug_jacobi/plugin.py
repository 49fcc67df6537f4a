"""specplug hooks of specplug-jacobi: the ``jacobi`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_jacobi.proposer import JacobiOptions, JacobiProposer


@hookimpl
def specplug_register_methods(register):
    register(
        MethodSpec(
            id="jacobi", factory=JacobiProposer, options=JacobiOptions, tree=False,
            needs=frozenset({Need.target_predictions}),
        )
    )
