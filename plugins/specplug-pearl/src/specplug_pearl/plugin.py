"""specplug hooks of specplug-pearl: the ``pearl`` method (entry point ``pearl`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_pearl.proposer import PearlOptions, PearlProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model for a 'layers' draft (a view of the target's own layers). vLLM's custom_class
    # path cannot give a model or run a drafter beside its forward, so PEARL runs in the reference engine.
    register(MethodSpec(id="pearl", factory=PearlProposer, options=PearlOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_pearl.bench import KIND

    register(KIND)
