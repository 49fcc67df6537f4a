"""specplug-falcon's wiring: entry point, registration, card and options of ``falcon``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_falcon.proposer import FalconOptions, FalconProposer


class TestFalconRegistration(MethodRegistrationConformance):
    method = "falcon"
    distribution = "specplug-falcon"
    plugin_module = "specplug_falcon.plugin"
    options_class = FalconOptions
    proposer_class = FalconProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "top_k": 5}
    bad_options = [({"top_k": 0}, "top_k"), ({"top_k": 11}, "top_k"), ({"tree": "sparse"}, "tree"),
                   ({"tree_size": 0}, "tree_size"), ({"block": 3}, "block")]
