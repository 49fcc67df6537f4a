"""specplug-specasr's wiring: entry point, registration, card and options of specasr."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_specasr.proposer import SpecAsrOptions, SpecAsrProposer


class TestSpecAsrRegistration(MethodRegistrationConformance):
    distribution = "specplug-specasr"
    plugin_module = "specplug_specasr.plugin"
    entry_point = "specasr"
    method = "specasr"
    options_class = SpecAsrOptions
    proposer_class = SpecAsrProposer
    tree = True
    needs = frozenset({Need.target_model})
    bad_options = [({"truncate_below": 1.5}, "truncate_below"), ({"max_branches": -1}, "max_branches"), ({"branch_depth": 0}, "branch_depth")]
