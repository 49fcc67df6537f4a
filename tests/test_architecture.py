"""The house rules, checked on the code itself (``ast``, nothing imported or run).

- The core never imports a plugin package (``specplug_*``), not even lazily inside a function.
- No import circles between the core's modules (lazy imports inside functions count too: a circle
  hidden in a function is still a circle a reader has to untangle).
- ``specplug/verify/`` is self-contained: it imports only itself, the contracts and the spec types.
- ``specplug/builtin/`` only registers: no classes, no logic beyond hook implementations.
- Only ``specplug/integrations/vllm/`` imports vllm; the contracts and the catalogue types import
  neither vllm nor transformers nor torch at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "specplug"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def import_statements(path: Path, top_level_only: bool = False) -> Iterator[tuple[str, list[str], int]]:
    """``(module, names, line)`` for every import in ``path`` (``names`` empty for ``import module``;
    relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([base] if base else []))
            yield base, [alias.name for alias in node.names], node.lineno


def imports(path: Path, top_level_only: bool = False) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports, with its line."""
    for module, _, line in import_statements(path, top_level_only):
        yield module, line


def core_graph() -> dict[str, set[str]]:
    """module -> the core modules it imports. ``from a.b import c`` is an arrow to ``a.b.c`` when
    that is a module, else to ``a.b``."""
    modules = core_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names, _ in import_statements(path):
            submodules = {f"{module}.{n}" for n in names} & modules.keys()
            edges |= submodules
            if len(submodules) < len(names) or not names:
                edges.add(module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_circle_and_ignores_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_core_has_no_import_circles():
    found = cycles(core_graph())
    assert not found, "import circles in specplug/:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_core_never_imports_a_plugin():
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}: imports {target}"
        for path in core_modules().values()
        for target, line in imports(path)
        if target.split(".")[0].startswith("specplug_")
    ]
    assert not offenders, "the core imports plugin packages:\n" + "\n".join(offenders)


def test_only_the_vllm_integration_imports_vllm():
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}"
        for name, path in core_modules().items()
        if not name.startswith("specplug.integrations.vllm")
        for target, line in imports(path)
        if target == "vllm" or target.startswith("vllm.")
    ]
    assert not offenders, "vllm imported outside specplug/integrations/vllm/:\n" + "\n".join(offenders)


@pytest.mark.parametrize("module", ["specplug.protocols", "specplug.taxonomy", "specplug.methods", "specplug.registry",
                                    "specplug.hookspecs", "specplug.plugins", "specplug.verify.specs"])
def test_contracts_import_no_engine_at_module_level(module):
    heavy = {"torch", "transformers", "vllm"}
    found = [t for t, _ in imports(core_modules()[module], top_level_only=True) if t.split(".")[0] in heavy]
    assert not found, f"{module} imports {found} at module level"


def test_verify_is_self_contained():
    allowed = ("specplug.verify", "specplug.protocols", "specplug.methods")
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}: imports {target}"
        for name, path in core_modules().items()
        if name.startswith("specplug.verify")
        for target, line in imports(path)
        if target.startswith("specplug") and not target.startswith(allowed)
    ]
    assert not offenders, "specplug/verify/ reaches outside itself:\n" + "\n".join(offenders)


def test_builtin_only_registers():
    for name, path in core_modules().items():
        if not name.startswith("specplug.builtin."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            assert not isinstance(node, ast.ClassDef), f"{name} defines class {node.name}: put it beside what it serves"
            if isinstance(node, ast.FunctionDef):
                decorators = {ast.unparse(d) for d in node.decorator_list}
                assert node.name.startswith("specplug_register_") and "hookimpl" in decorators, (
                    f"{name}.{node.name} is not a hook implementation: builtin/ only registers"
                )
