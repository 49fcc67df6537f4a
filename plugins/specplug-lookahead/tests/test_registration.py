"""specplug-lookahead's wiring: entry point, registration, card and options, and lookahead behind
``specplug.vllm.lookahead``.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_lookahead.proposer import LookaheadOptions, LookaheadPoolProposer

BAD_OPTIONS = [({"ngram": 1}, "ngram"), ({"guesses": 0}, "guesses"), ({"window": 65}, "window"), ({"n_gram": 3}, "n_gram")]


class TestLookaheadRegistration(MethodRegistrationConformance):
    method = "lookahead"
    distribution = "specplug-lookahead"
    plugin_module = "specplug_lookahead.plugin"
    options_class = LookaheadOptions
    proposer_class = LookaheadPoolProposer
    tree = True
    options = {"ngram": 3, "guesses": 2}
    bad_options = BAD_OPTIONS


class TestLookaheadVllmAdapter(VllmAdapterConformance):
    method = "lookahead"
    options = {"ngram": 3, "guesses": 2}
    bad_options = BAD_OPTIONS
