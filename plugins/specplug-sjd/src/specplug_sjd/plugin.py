"""specplug hooks of specplug-sjd: the ``sjd`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_sjd.proposer import SJDOptions, SJDProposer


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="sjd", factory=SJDProposer, options=SJDOptions, needs=frozenset({Need.target_probs})))
