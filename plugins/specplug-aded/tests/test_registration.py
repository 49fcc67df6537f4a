"""specplug-aded's wiring: entry point, registration, card and options, and ``specplug.vllm.aded``."""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_aded import AdedOptions, AdedProposer

BAD_OPTIONS = [
    ({"simulations": 0}, "simulations"),
    ({"max_nodes": 0}, "max_nodes"),
    ({"corpus": "/nonexistent/c.npy"}, "does not exist"),
    ({"c_puc": 1.0}, "c_puc"),
]


class TestAdedRegistration(MethodRegistrationConformance):
    method = "aded"
    distribution = "specplug-aded"
    plugin_module = "specplug_aded.plugin"
    options_class = AdedOptions
    proposer_class = AdedProposer
    tree = True
    options = {"simulations": 8}
    bad_options = BAD_OPTIONS


class TestAdedVllmAdapter(VllmAdapterConformance):
    method = "aded"
    options = {"simulations": 8}
    bad_options = BAD_OPTIONS
