"""specplug-fly's wiring (tests from :class:`specplug.testing.VerifierRegistrationConformance`)."""

from specplug.testing import VerifierRegistrationConformance
from specplug_fly.options import FlyOptions
from specplug_fly.verifier import FlyVerifier


class TestFlyRegistration(VerifierRegistrationConformance):
    verifier = "fly"
    distribution = "specplug-fly"
    plugin_module = "specplug_fly.plugin"
    options_class = FlyOptions
    verifier_class = FlyVerifier
    lossless = False
    bad_options = [({"window": 0}, "window"), ({"entropy_threshold": -1}, "entropy_threshold"), ({"tau": 1}, "tau")]
