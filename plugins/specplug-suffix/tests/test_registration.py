"""specplug-suffix's wiring: entry point, registration, card and options, and suffix behind ``specplug.vllm.suffix``.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_suffix import SuffixOptions, SuffixProposer

BAD_OPTIONS = [
    ({"max_depth": 1}, "max_depth"),
    ({"max_spec_factor": -1}, "max_spec_factor"),
    ({"min_token_prob": 1.5}, "min_token_prob"),
    ({"max_cached_requests": -1}, "max_cached_requests"),
    ({"max_cached_tokens": 10}, "max_cached_tokens"),
    ({"tree": "maybe"}, "tree"),
    ({"alpha": 2}, "alpha"),
]


class TestSuffixRegistration(MethodRegistrationConformance):
    method = "suffix"
    distribution = "specplug-suffix"
    plugin_module = "specplug_suffix.plugin"
    options_class = SuffixOptions
    proposer_class = SuffixProposer
    tree = True
    options = {"max_cached_requests": 0}
    bad_options = BAD_OPTIONS

    def check_built(self, proposer, options):
        super().check_built(proposer, options)
        assert proposer.cache is None  # no cached requests: no global cache at all


class TestSuffixVllmAdapter(VllmAdapterConformance):
    method = "suffix"
    options = {"max_spec_factor": 2.0}
    bad_options = BAD_OPTIONS
