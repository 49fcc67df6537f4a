"""specplug-hydra's wiring: entry point, registration, card and options of ``hydra``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_hydra.proposer import HydraOptions, HydraProposer


class TestHydraRegistration(MethodRegistrationConformance):
    method = "hydra"
    distribution = "specplug-hydra"
    plugin_module = "specplug_hydra.plugin"
    options_class = HydraOptions
    proposer_class = HydraProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "top_k": 5}
    bad_options = [({"top_k": 0}, "top_k"), ({"top_k": 11}, "top_k"), ({"tree": "dynamic"}, "tree"),
                   ({"tree_size": 0}, "tree_size"), ({"heads": 3}, "heads")]
