"""specplug-redrafter's wiring: entry point, registration, card and options of ``redrafter``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_redrafter.proposer import ReDrafterOptions, ReDrafterProposer


class TestReDrafterRegistration(MethodRegistrationConformance):
    method = "redrafter"
    distribution = "specplug-redrafter"
    plugin_module = "specplug_redrafter.plugin"
    options_class = ReDrafterOptions
    proposer_class = ReDrafterProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"beam_width": 2, "beam_length": 3}
    bad_options = [({"beam_width": 0}, "beam_width"), ({"beam_length": 0}, "beam_length"), ({"tree_size": 0}, "tree_size"),
                   ({"beams": 3}, "beams")]
