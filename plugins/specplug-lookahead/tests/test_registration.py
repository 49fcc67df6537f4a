from specplug.registry import build_registry
from specplug_lookahead import plugin
from specplug_lookahead.proposer import LookaheadPoolProposer


def test_lookahead_registers_its_pool_driven_proposer():
    registry = build_registry(load_entry_points=False, extra_plugins=[plugin])
    spec = registry.method("lookahead")
    assert spec.tree and not spec.needs
    proposer = spec.build({"ngram": 3, "guesses": 2})
    assert isinstance(proposer, LookaheadPoolProposer) and proposer.options.ngram == 3
