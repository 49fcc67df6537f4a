"""specplug hooks of the ``cs_drafting`` plugin."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_cs_drafting.options import CascadeOptions


def _proposer(options: CascadeOptions):
    from specplug_cs_drafting.proposer import CascadeProposer

    return CascadeProposer(options)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="cs_drafting", factory=_proposer, options=CascadeOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))
