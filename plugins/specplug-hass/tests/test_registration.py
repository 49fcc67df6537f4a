"""specplug-hass's wiring: entry point, registration, card and options of ``hass``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_hass.proposer import HassOptions, HassProposer


class TestHassRegistration(MethodRegistrationConformance):
    method = "hass"
    distribution = "specplug-hass"
    plugin_module = "specplug_hass.plugin"
    options_class = HassOptions
    proposer_class = HassProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "depth": 3}
    bad_options = [({"tree": "sparse"}, "tree"), ({"tree_size": 0}, "tree_size"), ({"depth": 0}, "depth"),
                   ({"align_steps": 3}, "align_steps")]
