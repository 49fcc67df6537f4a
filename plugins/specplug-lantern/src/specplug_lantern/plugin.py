"""specplug hooks of specplug-lantern: the ``lantern`` verifier (lossy)."""

from specplug.hookspecs import hookimpl
from specplug.methods import VerifierSpec
from specplug_lantern.verifier import LanternOptions, LanternVerifier


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="lantern", factory=LanternVerifier, options=LanternOptions))
