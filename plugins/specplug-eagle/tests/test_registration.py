"""specplug-eagle's wiring: entry point, registration, cards and options of eagle, eagle2 and eagle3.

The tests come from :class:`specplug.testing.MethodRegistrationConformance`; this module says what
the plugin registers. (vLLM runs EAGLE heads natively: ``specplug vllm-config eagle3 --model HEAD``.)
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_eagle.proposer import (
    Eagle2Options,
    Eagle2Proposer,
    Eagle3Options,
    Eagle3Proposer,
    EagleOptions,
    EagleProposer,
)

BAD_OPTIONS = [({"top_k": 0}, "top_k"), ({"depth": 0}, "depth"), ({"tree": "static"}, "tree"), ({"heads": "x"}, "heads")]


class _Eagle(MethodRegistrationConformance):
    distribution = "specplug-eagle"
    plugin_module = "specplug_eagle.plugin"
    entry_point = "eagle"
    plugin_methods = ("eagle", "eagle2", "eagle3")
    tree = True
    needs = frozenset({Need.target_hidden_states})
    bad_options = BAD_OPTIONS


class TestEagleRegistration(_Eagle):
    method = "eagle"
    options_class = EagleOptions
    proposer_class = EagleProposer
    options = {"tree_size": 6}


class TestEagle2Registration(_Eagle):
    method = "eagle2"
    options_class = Eagle2Options
    proposer_class = Eagle2Proposer
    options = {"top_k": 3, "depth": 4}


class TestEagle3Registration(_Eagle):
    method = "eagle3"
    options_class = Eagle3Options
    proposer_class = Eagle3Proposer
    options = {"top_k": 3, "depth": 4}
