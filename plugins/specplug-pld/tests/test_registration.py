"""specplug-pld's wiring: entry point, registration, card and options, and pld behind ``specplug.vllm.pld``.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_pld import PldOptions, PldProposer

BAD_OPTIONS = [
    ({"min_ngram": 0}, "min_ngram"),
    ({"max_ngram": 0}, "max_ngram"),
    ({"num_pred_tokens": 0}, "num_pred_tokens"),
    ({"match": "middle"}, "match"),
    ({"max_ngarm": 3}, "max_ngarm"),
    ({"min_ngram": 3, "max_ngram": 2}, "max_ngram (2) must be >= min_ngram (3)"),
]


class TestPldRegistration(MethodRegistrationConformance):
    method = "pld"
    distribution = "specplug-pld"
    plugin_module = "specplug_pld.plugin"
    options_class = PldOptions
    proposer_class = PldProposer
    options = {"min_ngram": 2, "max_ngram": 4}
    bad_options = BAD_OPTIONS


class TestPldVllmAdapter(VllmAdapterConformance):
    method = "pld"
    options = {"min_ngram": 1, "max_ngram": 3}
    bad_options = BAD_OPTIONS
