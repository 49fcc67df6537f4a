"""The plugin manager: built-in plugins and the entry-point group ``specplug``.

Built-in methods and verifiers are plugins too and go through the same hooks (``DEFAULT_PLUGINS``).
Third-party plugins are found through entry points. ``SPECPLUG_LOAD_PLUGINS`` is an allow-list:
when set, only the named entry points load (comma-separated names; empty loads none).
A plugin that fails to import is recorded with its error and skipped; the others still load.
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from specplug import hookspecs

ENTRY_POINT_GROUP = "specplug"
ALLOW_LIST_ENV = "SPECPLUG_LOAD_PLUGINS"

#: In-tree plugins, loaded like any other but always present.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "specplug.builtin.verifiers",
    "specplug.builtin.bench_kinds",
)


@dataclass
class PluginInfo:
    """One plugin as ``specplug plugins`` reports it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    error: str | None = None
    hooks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PluginSet:
    """A plugin manager and what loading it found (including failures)."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo]


def _allowed_names() -> set[str] | None:
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last


def get_plugin_manager(load_entry_points: bool = True, extra_plugins=()) -> PluginSet:
    """A new plugin manager with the built-in plugins, (by default) the installed ones, and any
    ``extra_plugins`` objects given (tests use these)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        infos.append(PluginInfo(name=module_name, module=module_name, builtin=True, version=_own_version()))
    if load_entry_points:
        allowed = _allowed_names()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
            )
            infos.append(info)
            if pm.has_plugin(ep.name):
                info.error = f"another plugin is already registered as {ep.name!r}"
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the others down
                info.error = _short_error(exc)
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        pm.register(plugin, name=name)
        infos.append(PluginInfo(name=name, module=name))
    pm.check_pending()
    for info in infos:
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return PluginSet(pm, infos)


def _own_version() -> str:
    from specplug._version import __version__

    return __version__
