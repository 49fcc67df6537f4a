"""specplug-anpd's wiring: entry point, registration, card and options, and anpd behind ``specplug.vllm.anpd``.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_anpd import AnpdOptions, AnpdProposer

BAD_OPTIONS = [
    ({"min_n": 1}, "min_n"),
    ({"max_n": 1}, "max_n"),
    ({"prefer": "oldest"}, "prefer"),
    ({"num_pred_tokens": 0}, "num_pred_tokens"),
    ({"max_requests": 0}, "max_requests"),
    ({"order": 3}, "order"),
    ({"min_n": 4, "max_n": 3}, "max_n (3) must be >= min_n (4)"),
]


class TestAnpdRegistration(MethodRegistrationConformance):
    method = "anpd"
    distribution = "specplug-anpd"
    plugin_module = "specplug_anpd.plugin"
    options_class = AnpdOptions
    proposer_class = AnpdProposer
    options = {"max_n": 5}
    bad_options = BAD_OPTIONS


class TestAnpdVllmAdapter(VllmAdapterConformance):
    method = "anpd"
    options = {"min_n": 2, "max_n": 4}
    bad_options = BAD_OPTIONS
