"""specplug-jacobi's wiring: entry point, registration, card and options; vLLM runs it at level 2 only.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance, VllmLevel2MethodConformance
from specplug_jacobi.proposer import JacobiOptions, JacobiProposer


class TestJacobiRegistration(MethodRegistrationConformance):
    method = "jacobi"
    distribution = "specplug-jacobi"
    plugin_module = "specplug_jacobi.plugin"
    options_class = JacobiOptions
    proposer_class = JacobiProposer
    needs = frozenset({Need.target_predictions})
    options = {"window": 4}
    bad_options = [({"window": 0}, "window"), ({"init": "zeros"}, "init"), ({"windw": 4}, "windw")]

    def check_built(self, proposer, options):
        super().check_built(proposer, options)
        assert Need.target_predictions in type(proposer).needs  # declared by the class, not set per instance


class TestJacobiVllmAdapter(VllmLevel2MethodConformance):
    method = "jacobi"
    options = {"window": 4}
