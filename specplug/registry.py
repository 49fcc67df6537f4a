"""The registry: catalogue cards from ``registry/`` merged with what plugins register.

``get_registry()`` builds it once per process (loading plugins on first use, never at import time).
Duplicate ids are refused: the first registration stays, the second is reported in
``Registry.problems`` naming both sources (``get_registry(strict=True)`` raises instead).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from specplug.bench.kind import BenchKindSpec
from specplug.methods import MethodSpec, VerifierSpec
from specplug.plugins import PluginInfo, get_plugin_manager
from specplug.taxonomy import MethodCard, Taxonomy
from specplug.train.spec import ObjectiveSpec

__all__ = [
    "Registry",
    "NotRunnableError",
    "RegistryError",
    "UnknownIdError",
    "catalogue_dir",
    "get_registry",
    "load_card_file",
    "reset_registry",
]


class RegistryError(ValueError):
    """The catalogue or a plugin registration is invalid."""


class NotRunnableError(RegistryError):
    """A catalogued method that no installed plugin implements."""


class UnknownIdError(KeyError):
    """An id that no card, method or verifier has; carries the nearest known ids."""

    def __init__(self, kind: str, wanted: str, suggestions: list[str]):
        self.kind, self.wanted, self.suggestions = kind, wanted, suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {wanted!r}.{hint} Run 'specplug list' to see every id.")

    def __str__(self) -> str:
        return self.args[0]


def catalogue_dir() -> Path:
    """Where the catalogue data lives: inside the wheel, or ``registry/`` of a source checkout."""
    packaged = Path(__file__).parent / "_registry"
    if (packaged / "taxonomy.yaml").exists():
        return packaged
    source = Path(__file__).resolve().parent.parent / "registry"
    if (source / "taxonomy.yaml").exists():
        return source
    raise RegistryError(f"catalogue data not found in {packaged} or {source}; reinstall specplug")


def load_card_file(path: Path) -> MethodCard:
    """Read and validate one card (YAML). Errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: a card must be a YAML mapping, got {type(data).__name__}")
    try:
        return MethodCard.model_validate(data)
    except ValidationError as err:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise RegistryError(f"{path}: invalid card:\n" + "\n".join(lines)) from None


@dataclass
class Registry:
    """Every card, method and verifier known in this process."""

    taxonomy: Taxonomy
    cards: dict[str, MethodCard] = field(default_factory=dict)
    card_sources: dict[str, str] = field(default_factory=dict)
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    method_sources: dict[str, str] = field(default_factory=dict)
    verifiers: dict[str, VerifierSpec] = field(default_factory=dict)
    verifier_sources: dict[str, str] = field(default_factory=dict)
    objectives: dict[str, ObjectiveSpec] = field(default_factory=dict)
    objective_sources: dict[str, str] = field(default_factory=dict)
    bench_kinds: dict[str, BenchKindSpec] = field(default_factory=dict)
    bench_kind_sources: dict[str, str] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------------
    def add_card(self, card: MethodCard, source: str) -> bool:
        alias_owner = self._alias_owner(card.id)
        if card.id in self.cards:
            self.problems.append(
                f"duplicate card id {card.id!r}: defined by {self.card_sources[card.id]} and by {source}; "
                f"the second is ignored. Rename one, or refer to the existing card by id."
            )
            return False
        if alias_owner:
            self.problems.append(f"card id {card.id!r} from {source} is already an alias of {alias_owner!r}")
            return False
        self.cards[card.id] = card
        self.card_sources[card.id] = source
        return True

    def add_method(self, spec: MethodSpec, source: str) -> None:
        if spec.id in self.methods:
            self.problems.append(
                f"duplicate method id {spec.id!r}: registered by {self.method_sources[spec.id]} and by {source}; "
                "the second is ignored. Uninstall one of the two plugins."
            )
            return
        if spec.card is not None and not self.add_card(spec.card, source):
            return
        if spec.id not in self.cards:
            self.problems.append(
                f"method {spec.id!r} from {source} has no card: add registry/methods/{spec.id}.yaml "
                "or pass card=MethodCard(...) in its MethodSpec"
            )
            return
        self.methods[spec.id] = spec
        self.method_sources[spec.id] = source

    def add_verifier(self, spec: VerifierSpec, source: str) -> None:
        if spec.id in self.verifiers:
            self.problems.append(
                f"duplicate verifier id {spec.id!r}: registered by {self.verifier_sources[spec.id]} and by {source}"
            )
            return
        if spec.card is not None and not self.add_card(spec.card, source):
            return
        if spec.id not in self.cards:
            self.problems.append(f"verifier {spec.id!r} from {source} has no card")
            return
        self.verifiers[spec.id] = spec
        self.verifier_sources[spec.id] = source

    def add_objective(self, spec: ObjectiveSpec, source: str) -> None:
        self._add_unique("objective", self.objectives, self.objective_sources, spec, source)

    def add_bench_kind(self, spec: BenchKindSpec, source: str) -> None:
        self._add_unique("bench kind", self.bench_kinds, self.bench_kind_sources, spec, source)

    def _add_unique(self, what: str, items: dict, sources: dict, spec, source: str) -> None:
        if spec.id in items:
            self.problems.append(
                f"duplicate {what} {spec.id!r}: registered by {sources[spec.id]} and by {source}; "
                "the second is ignored. Uninstall one of the two plugins."
            )
            return
        items[spec.id] = spec
        sources[spec.id] = source

    def _alias_owner(self, name: str) -> str | None:
        return next((cid for cid, c in self.cards.items() if name in c.aliases), None)

    # -- lookups --------------------------------------------------------------------------------
    def _suggest(self, wanted: str, pool: Iterable[str]) -> list[str]:
        return difflib.get_close_matches(wanted.lower(), list(pool), n=3, cutoff=0.6)

    def resolve_id(self, wanted: str) -> str:
        """The card id for an id or alias (case-insensitive, '-' same as '_')."""
        key = wanted.strip().lower().replace("-", "_")
        if key in self.cards:
            return key
        owner = self._alias_owner(key) or next(
            (cid for cid, c in self.cards.items() if key in {a.lower().replace("-", "_") for a in c.aliases}), None
        )
        if owner:
            return owner
        raise UnknownIdError("method", wanted, self._suggest(key, list(self.cards) + self._all_aliases()))

    def _all_aliases(self) -> list[str]:
        return [a.lower() for c in self.cards.values() for a in c.aliases]

    def card(self, wanted: str) -> MethodCard:
        return self.cards[self.resolve_id(wanted)]

    def method(self, wanted: str) -> MethodSpec:
        """The runnable method for an id; explains when the card exists but nothing implements it."""
        key = wanted.strip().lower().replace("-", "_")
        if key not in self.cards and key not in self.methods:
            try:
                key = self.resolve_id(key)
            except UnknownIdError:
                raise UnknownIdError("method", wanted, self._suggest(key, self.methods)) from None
        if key in self.methods:
            return self.methods[key]
        runnable = ", ".join(sorted(self.methods)) or "none"
        card = self.cards[key]
        package = next((i.package for i in card.implementations if i.package), None)
        fix = f"pip install {package}" if package else "write a plugin for it (docs: writing a method plugin)"
        raise NotRunnableError(
            f"{key!r} is in the catalogue but no installed plugin implements it ({fix}). Runnable here: {runnable}."
        )

    def verifier(self, wanted: str) -> VerifierSpec:
        key = wanted.strip().lower().replace("-", "_")
        if key in self.verifiers:
            return self.verifiers[key]
        raise UnknownIdError("verifier", wanted, self._suggest(key, self.verifiers))

    def objective(self, wanted: str) -> ObjectiveSpec:
        """The training objective registered for a method id (``specplug train <id>``)."""
        key = wanted.strip().lower().replace("-", "_")
        if key in self.objectives:
            return self.objectives[key]
        raise UnknownIdError("training objective", wanted, self._suggest(key, self.objectives))

    def bench_kind(self, wanted: str) -> BenchKindSpec:
        """The suite kind a suite file names (``kind = "..."``)."""
        if wanted in self.bench_kinds:
            return self.bench_kinds[wanted]
        raise UnknownIdError("bench kind", wanted, self._suggest(wanted, self.bench_kinds))

    def filter(self, **facets: str | bool | None) -> Iterator[MethodCard]:
        """Cards whose facets equal every given value (``modality`` and ``engine`` match list members)."""
        for card in sorted(self.cards.values(), key=lambda c: c.id):
            if all(_matches(card, name, value) for name, value in facets.items() if value is not None):
                yield card

    def is_runnable(self, card_id: str) -> bool:
        return card_id in self.methods or card_id in self.verifiers


def _matches(card: MethodCard, facet: str, value: str | bool) -> bool:
    if facet == "modality":
        return value in {m.value for m in card.modalities}
    if facet == "engine":
        return value in {e.value for e in card.engines}
    if facet == "deployment":
        return value in card.deployment
    if facet == "lossless":
        return card.lossless is value
    if facet == "runnable":
        return True  # handled by callers that know the registry
    actual = getattr(card, facet)
    return (actual.value if actual is not None else None) == value


def _load_taxonomy(root: Path) -> Taxonomy:
    path = root / "taxonomy.yaml"
    try:
        return Taxonomy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as err:
        raise RegistryError(f"{path}: invalid taxonomy: {err}") from None


def build_registry(load_entry_points: bool = True, strict: bool = False, extra_plugins: Iterable[object] = ()) -> Registry:
    """A fresh registry: catalogue files, then built-in and installed plugins."""
    root = catalogue_dir()
    registry = Registry(taxonomy=_load_taxonomy(root))
    for path in sorted((root / "methods").glob("*.yaml")):
        card = load_card_file(path)
        if card.id != path.stem:
            raise RegistryError(f"{path}: card id {card.id!r} must match the file name {path.stem!r}")
        registry.add_card(card, f"registry/methods/{path.name}")

    plugin_set = get_plugin_manager(load_entry_points=load_entry_points, extra_plugins=extra_plugins)
    registry.plugins = plugin_set.infos
    hook = plugin_set.pm.hook
    # Call each plugin's hooks one by one, so a failing plugin is reported and the rest still load.
    for info in plugin_set.infos:
        plugin = plugin_set.pm.get_plugin(info.name)
        if plugin is None:
            continue
        source = f"plugin {info.name!r}" + (f" ({info.distribution} {info.version})" if info.distribution else "")
        for hook_name, adder in (
            ("specplug_register_cards", registry.add_card),
            ("specplug_register_methods", registry.add_method),
            ("specplug_register_verifiers", registry.add_verifier),
            ("specplug_register_objectives", registry.add_objective),
            ("specplug_register_bench_kinds", registry.add_bench_kind),
        ):
            impl = getattr(plugin, hook_name, None)
            if impl is None or not hasattr(hook, hook_name):
                continue
            try:
                impl(lambda item, _add=adder, _src=source: _add(item, _src))
            except Exception as exc:
                info.error = f"{hook_name} failed: {type(exc).__name__}: {exc}"
                registry.problems.append(f"{source}: {info.error}")
    if strict and registry.problems:
        raise RegistryError("registry problems:\n" + "\n".join(f"- {p}" for p in registry.problems))
    return registry


@cache
def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    return build_registry()


def reset_registry() -> None:
    """Forget the cached registry (tests that install or register plugins call this)."""
    get_registry.cache_clear()
