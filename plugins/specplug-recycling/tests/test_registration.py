from specplug.protocols import Need
from specplug.registry import build_registry
from specplug_recycling import plugin


def test_recycling_registers_with_its_needs():
    registry = build_registry(load_entry_points=False, extra_plugins=[plugin])
    spec = registry.method("recycling")
    assert spec.needs == frozenset({Need.target_topk}) and spec.tree
    assert spec.build({"width": 4}).matrix.width == 4
