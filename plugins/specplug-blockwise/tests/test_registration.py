"""specplug-blockwise's wiring: entry point, registration, card and options of ``blockwise``."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_blockwise.proposer import BlockwiseOptions, BlockwiseProposer


class TestBlockwiseRegistration(MethodRegistrationConformance):
    method = "blockwise"
    distribution = "specplug-blockwise"
    plugin_module = "specplug_blockwise.plugin"
    options_class = BlockwiseOptions
    proposer_class = BlockwiseProposer
    needs = frozenset({Need.target_hidden_states})
    options = {"tree_size": 2}
    bad_options = [({"tree_size": 0}, "tree_size"), ({"block": 3}, "block")]
