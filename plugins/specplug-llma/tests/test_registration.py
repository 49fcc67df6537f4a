"""specplug-llma's wiring: entry point, registration, card and options, and ``specplug.vllm.llma``."""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_llma import LlmaOptions, LlmaProposer

BAD_OPTIONS = [
    ({"trigger": 0}, "trigger"),
    ({"copy_len": 0}, "copy_len"),
    ({"reference": "/nonexistent/ref.npy"}, "does not exist"),
    ({"trigger": 3, "max_trigger": 2}, "max_trigger (2) must be >= trigger (3)"),
    ({"triger": 1}, "triger"),
]


class TestLlmaRegistration(MethodRegistrationConformance):
    method = "llma"
    distribution = "specplug-llma"
    plugin_module = "specplug_llma.plugin"
    options_class = LlmaOptions
    proposer_class = LlmaProposer
    options = {"trigger": 2}
    bad_options = BAD_OPTIONS


class TestLlmaVllmAdapter(VllmAdapterConformance):
    method = "llma"
    options = {"trigger": 1}
    bad_options = BAD_OPTIONS
