"""specplug-mtad's wiring (tests from :class:`specplug.testing.VerifierRegistrationConformance`)."""

from specplug.methods import MethodOptions
from specplug.testing import VerifierRegistrationConformance
from specplug_mtad.verifier import MtadVerifier


class TestMtadRegistration(VerifierRegistrationConformance):
    verifier = "mtad"
    distribution = "specplug-mtad"
    plugin_module = "specplug_mtad.plugin"
    options_class = MethodOptions
    verifier_class = MtadVerifier
    lossless = False
    bad_options = [({"beam": 4}, "beam")]
