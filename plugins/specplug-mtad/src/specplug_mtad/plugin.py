"""specplug hooks of specplug-mtad: the ``mtad`` verifier (lossy)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodOptions, VerifierSpec


def _build(options: MethodOptions):
    from specplug_mtad.verifier import MtadVerifier

    return MtadVerifier()


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="mtad", factory=_build))
