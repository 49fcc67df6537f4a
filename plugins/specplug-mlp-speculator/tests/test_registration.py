"""specplug-mlp-speculator's wiring: entry point, registration, card and options of ``mlp_speculator``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_mlp_speculator.proposer import MLPSpeculatorOptions, MLPSpeculatorProposer


class TestMLPSpeculatorRegistration(MethodRegistrationConformance):
    method = "mlp_speculator"
    distribution = "specplug-mlp-speculator"
    plugin_module = "specplug_mlp_speculator.plugin"
    options_class = MLPSpeculatorOptions
    proposer_class = MLPSpeculatorProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "n_candidates": 3}
    bad_options = [({"tree": "dynamic"}, "tree"), ({"tree_size": 0}, "tree_size"), ({"n_candidates": 0}, "n_candidates"),
                   ({"stages": 3}, "stages")]
