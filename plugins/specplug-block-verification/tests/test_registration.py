"""specplug-block-verification's wiring: entry point and registration of the ``block_verification``
verifier (tests from :class:`specplug.testing.VerifierRegistrationConformance`)."""

from specplug.methods import MethodOptions
from specplug.testing import VerifierRegistrationConformance
from specplug_block_verification.verifier import BlockVerifier


class TestBlockVerificationRegistration(VerifierRegistrationConformance):
    verifier = "block_verification"
    distribution = "specplug-block-verification"
    plugin_module = "specplug_block_verification.plugin"
    options_class = MethodOptions
    verifier_class = BlockVerifier
    lossless = True
    bad_options = [({"gamma": 3}, "gamma")]
