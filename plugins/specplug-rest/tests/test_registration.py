from specplug.registry import build_registry
from specplug_rest import plugin


def test_rest_registers_with_its_catalogue_card():
    registry = build_registry(load_entry_points=False, extra_plugins=[plugin])
    assert not [p for p in registry.problems if "rest" in p]
    spec = registry.method("rest")
    assert spec.tree and spec.options is plugin.RestOptions
