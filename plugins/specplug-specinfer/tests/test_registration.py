"""specplug-specinfer's wiring (tests from :class:`specplug.testing.MethodRegistrationConformance`)."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_specinfer.options import SpecInferOptions
from specplug_specinfer.proposer import SpecInferProposer


class TestSpecInferRegistration(MethodRegistrationConformance):
    method = "specinfer"
    distribution = "specplug-specinfer"
    plugin_module = "specplug_specinfer.plugin"
    options_class = SpecInferOptions
    proposer_class = SpecInferProposer
    tree = True
    needs = frozenset({Need.target_model})
    options = {"draft_layers": "0"}
    bad_options = [({"draft_layers": "0", "expansion": [0]}, "expansion"), ({"draft_layers": "0", "budget": 0}, "budget"),
                   ({"draft_layers": "0", "seed": -1}, "seed")]
