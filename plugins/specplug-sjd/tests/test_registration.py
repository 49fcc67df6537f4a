"""specplug-sjd's wiring: entry point, registration, card and options.

The tests come from :class:`specplug.testing.MethodRegistrationConformance`; this module says what
the plugin registers. (SJD needs the target's distributions, which vLLM's level 2 does not provide.)
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_sjd.proposer import SJDOptions, SJDProposer


class TestSjdRegistration(MethodRegistrationConformance):
    method = "sjd"
    distribution = "specplug-sjd"
    plugin_module = "specplug_sjd.plugin"
    options_class = SJDOptions
    proposer_class = SJDProposer
    needs = frozenset({Need.target_probs})
    options = {"window": 8}
    bad_options = [({"window": 0}, "window"), ({"init": "zeros"}, "init"), ({"init_low": 5, "init_high": 5}, "init_high")]
