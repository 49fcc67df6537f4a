"""specplug hooks of specplug-specinfer: the ``specinfer`` method (a tree drafter; lossless)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

NEEDS = frozenset({Need.target_model})


def _build(options):
    from specplug_specinfer.proposer import SpecInferProposer

    return SpecInferProposer(options)


def _options():
    from specplug_specinfer.options import SpecInferOptions

    return SpecInferOptions


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="specinfer", factory=_build, options=_options(), tree=True, needs=NEEDS))
