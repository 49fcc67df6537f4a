"""specplug-recycling's wiring: entry point, registration, card and options; vLLM runs it at level 2 only.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers.
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance, VllmLevel2MethodConformance
from specplug_recycling.proposer import RecyclingOptions, RecyclingProposer


class TestRecyclingRegistration(MethodRegistrationConformance):
    method = "recycling"
    distribution = "specplug-recycling"
    plugin_module = "specplug_recycling.plugin"
    options_class = RecyclingOptions
    proposer_class = RecyclingProposer
    tree = True
    needs = frozenset({Need.target_topk})
    options = {"width": 4}
    bad_options = [({"width": 0}, "width"), ({"tree_nodes": 0}, "tree_nodes"), ({"max_depth": 65}, "max_depth"),
                   ({"widht": 4}, "widht")]

    def check_built(self, proposer, options):
        super().check_built(proposer, options)
        assert proposer.matrix.width == 4  # the adjacency matrix keeps `width` candidates per token


class TestRecyclingVllmAdapter(VllmLevel2MethodConformance):
    method = "recycling"
    options = {"width": 4}
