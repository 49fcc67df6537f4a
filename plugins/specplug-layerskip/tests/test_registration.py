"""specplug-layerskip's wiring: entry point, registration, cards and options of its two methods.

The tests come from :class:`specplug.testing.MethodRegistrationConformance`; this module says what
the plugin registers. (Both methods need the target model itself, which vLLM's level 2 does not give.)
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
from specplug_layerskip.proposer import DraftVerifyProposer, SwiftProposer


class _LayerSkip(MethodRegistrationConformance):
    distribution = "specplug-layerskip"
    plugin_module = "specplug_layerskip.plugin"
    entry_point = "layerskip"
    plugin_methods = ("draft_verify", "swift")
    needs = frozenset({Need.target_model})


class TestDraftVerifyRegistration(_LayerSkip):
    method = "draft_verify"
    options_class = DraftVerifyOptions
    proposer_class = DraftVerifyProposer
    bad_options = [({"vocab_size": 0}, "vocab_size"), ({"threshold": 1.0}, "threshold"), ({"skip": 3}, "skip")]


class TestSwiftRegistration(_LayerSkip):
    method = "swift"
    options_class = SwiftOptions
    proposer_class = SwiftProposer
    tree = True
    bad_options = [({"vocab_size": 0}, "vocab_size"), ({"candidates": [1, 0, 2, 3]}, "candidates")]
