"""specplug hooks of the ``magicdec`` plugin (entry point ``magicdec`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_magicdec.proposer import MagicDecOptions, MagicDecProposer


@hookimpl
def specplug_register_methods(register):
    # The draft is the target's own weights (Need.target_model) over its own sparse cache; one chain per step.
    register(MethodSpec(id="magicdec", factory=MagicDecProposer, options=MagicDecOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_magicdec.long_context import KIND  # nothing heavy at import

    register(KIND)
