"""specplug-amphista's wiring: entry point, registration, card and options of ``amphista``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_amphista.proposer import AmphistaOptions, AmphistaProposer


class TestAmphistaRegistration(MethodRegistrationConformance):
    method = "amphista"
    distribution = "specplug-amphista"
    plugin_module = "specplug_amphista.plugin"
    options_class = AmphistaOptions
    proposer_class = AmphistaProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "top_k": 5}
    bad_options = [({"top_k": 0}, "top_k"), ({"top_k": 11}, "top_k"), ({"tree": "dynamic"}, "tree"),
                   ({"tree_size": 0}, "tree_size"), ({"heads": 3}, "heads")]
