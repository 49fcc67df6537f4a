"""specplug hooks of specplug-fly: the ``fly`` verifier (lossy)."""

from specplug.hookspecs import hookimpl
from specplug.methods import VerifierSpec
from specplug_fly.options import FlyOptions


def _build(options: FlyOptions):
    from specplug_fly.verifier import FlyVerifier

    return FlyVerifier(options)


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="fly", factory=_build, options=FlyOptions))
