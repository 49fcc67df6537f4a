"""specplug-magicdec's wiring: entry point, registration, card and options."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_magicdec import MagicDecOptions, MagicDecProposer


class TestMagicDecRegistration(MethodRegistrationConformance):
    method = "magicdec"
    distribution = "specplug-magicdec"
    plugin_module = "specplug_magicdec.plugin"
    options_class = MagicDecOptions
    proposer_class = MagicDecProposer
    needs = frozenset({Need.target_model})
    options = {"kv_budget": 64, "sinks": 4}
    bad_options = [({"kv_budget": 0}, "kv_budget"), ({"sinks": -1}, "sinks"), ({"budget": 3}, "budget")]
