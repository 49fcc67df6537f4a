from specplug.protocols import Need
from specplug.registry import build_registry
from specplug_jacobi import plugin


def test_jacobi_registers_with_its_needs():
    registry = build_registry(load_entry_points=False, extra_plugins=[plugin])
    spec = registry.method("jacobi")
    assert spec.needs == frozenset({Need.target_predictions})
    assert Need.target_predictions in type(spec.build({"window": 4})).needs
