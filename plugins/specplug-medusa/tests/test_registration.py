"""specplug-medusa's wiring: entry point, registration, card and options of ``medusa``.

The tests come from :class:`specplug.testing.MethodRegistrationConformance`; this module says what
the plugin registers. (vLLM runs Medusa heads natively: ``specplug vllm-config medusa --model HEAD``.)
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_medusa.proposer import MedusaOptions, MedusaProposer


class TestMedusaRegistration(MethodRegistrationConformance):
    method = "medusa"
    distribution = "specplug-medusa"
    plugin_module = "specplug_medusa.plugin"
    options_class = MedusaOptions
    proposer_class = MedusaProposer
    tree = True
    needs = frozenset({Need.target_hidden_states})
    options = {"tree": "chain", "top_k": 5}
    bad_options = [({"top_k": 0}, "top_k"), ({"top_k": 11}, "top_k"), ({"tree": "dynamic"}, "tree"),
                   ({"tree_size": 0}, "tree_size"), ({"heads": 3}, "heads")]
