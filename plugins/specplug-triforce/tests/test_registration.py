"""specplug-triforce's wiring: entry point, registration, card and options."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_triforce import TriForceOptions, TriForceProposer


class TestTriForceRegistration(MethodRegistrationConformance):
    method = "triforce"
    distribution = "specplug-triforce"
    plugin_module = "specplug_triforce.plugin"
    options_class = TriForceOptions
    proposer_class = TriForceProposer
    needs = frozenset({Need.target_model})
    options = {"layers": "0", "kv_budget": 64, "chunk_size": 8}
    bad_options = [({"layers": "0", "kv_budget": 0}, "kv_budget"), ({"layers": "0", "chunk_size": 0}, "chunk_size"),
                   ({"kv_budget": 64}, "draft model"), ({"layers": "0", "budget": 3}, "budget")]
