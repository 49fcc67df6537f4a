"""specplug-lantern's wiring: entry point, registration and options of the ``lantern`` verifier.

The tests come from :class:`specplug.testing.VerifierRegistrationConformance`; this module says what
the plugin registers. LANTERN reads the target's embeddings, so the build test saves a tiny model.
"""

import pytest

from specplug.testing import VerifierRegistrationConformance, tiny_llama
from specplug_lantern.verifier import LanternOptions, LanternVerifier


class TestLanternRegistration(VerifierRegistrationConformance):
    verifier = "lantern"
    distribution = "specplug-lantern"
    plugin_module = "specplug_lantern.plugin"
    options_class = LanternOptions
    verifier_class = LanternVerifier
    lossless = False
    bad_options = [({"delta": -0.1}, "delta"), ({"delta": 1.5}, "delta"), ({"k": 0}, "k"), ({"radius": 2}, "radius")]

    @pytest.fixture
    def verifier_options(self, tmp_path):
        tiny_llama(vocab_size=27, seed=0).save_pretrained(str(tmp_path / "m"))
        return {"model": str(tmp_path / "m"), "k": 3}
