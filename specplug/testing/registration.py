"""Conformance tests of a plugin's wiring: entry point, registration, card, options.

A plugin's ``tests/test_registration.py`` subclasses these classes and fills in what its plugin
registers; pytest collects the inherited tests (the base classes are not collected: their names do
not start with ``Test``)::

    class TestPldRegistration(MethodRegistrationConformance):
        method = "pld"
        distribution = "specplug-pld"
        plugin_module = "specplug_pld.plugin"
        options_class = PldOptions
        proposer_class = PldProposer
        options = {"min_ngram": 2, "max_ngram": 4}
        bad_options = [({"min_ngram": 0}, "min_ngram"), ({"max_ngarm": 3}, "max_ngarm")]

The checks (each a test of its own):

- the installed distribution declares the entry point ``<entry_point> = <plugin_module>`` in the
  ``specplug`` group, exactly once;
- the plugin module's hook registers exactly :attr:`plugin_methods`, and this method with its
  options model, ``tree`` flag and needs;
- a registry built from the installed plugins has the method, from that entry point of
  :attr:`distribution`, and no problem that names it;
- a registry built from the plugin module alone has the method and its catalogue card, and the card
  says what the plugin registers (:func:`specplug.catalogue_checks.facet_problems` and
  ``implementation_problems`` find nothing);
- building the method with :attr:`options` gives a :attr:`proposer_class` holding exactly those
  options and asking the engine for the spec's needs (extend :meth:`check_built` for more);
- every entry of :attr:`bad_options` is refused with an ``OptionsError`` naming the key and the
  method.

Methods whose options need files (a datastore, a model folder) override the ``method_options``
fixture instead of setting :attr:`options`. :class:`VerifierRegistrationConformance` does the same
for a verifier plugin (no card check: verifiers have none of their own).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, ClassVar

import pytest

__all__ = ["MethodRegistrationConformance", "VerifierRegistrationConformance"]


def _installed_entry_point(name: str):
    found = [ep for ep in entry_points(group="specplug") if ep.name == name]
    assert len(found) == 1, f"expected one installed 'specplug' entry point named {name!r}, found {len(found)}"
    return found[0]


def _bad_options_parametrize(metafunc) -> None:
    """Parametrize a test asking for ``bad_option`` with the class's ``bad_options``, one test each."""
    if "bad_option" in metafunc.fixturenames:
        cases = list(metafunc.cls.bad_options)
        assert cases, f"{metafunc.cls.__name__}.bad_options is empty: list options the plugin must refuse"
        metafunc.parametrize("bad_option", cases, ids=[str(key) for _, key in cases])


class _PluginWiring:
    """What method and verifier plugins share: the entry point and the options they refuse."""

    #: the pip distribution that ships the plugin, e.g. ``specplug-pld``
    distribution: ClassVar[str]
    #: the module the ``specplug`` entry point names, e.g. ``specplug_pld.plugin``
    plugin_module: ClassVar[str]
    #: the entry point's name; the registered id when left unset
    entry_point: ClassVar[str | None] = None
    #: the options model the spec declares
    options_class: ClassVar[type]
    #: options the build test passes (or override the ``method_options`` fixture)
    options: ClassVar[dict[str, Any]] = {}
    #: ``(options, text)``: options the plugin must refuse, and a text the error must contain (the key)
    bad_options: ClassVar[list[tuple[dict[str, Any], str]]] = []

    kind: ClassVar[str]  # "method" or "verifier"

    def pytest_generate_tests(self, metafunc):
        _bad_options_parametrize(metafunc)

    def registered_id(self) -> str:
        raise NotImplementedError

    def entry_point_name(self) -> str:
        return self.entry_point or self.registered_id()

    def spec(self, registry=None):
        from specplug.registry import get_registry

        registry = registry or get_registry()
        return getattr(registry, self.kind)(self.registered_id())

    def test_the_installed_distribution_declares_the_entry_point(self):
        ep = _installed_entry_point(self.entry_point_name())
        assert ep.value == self.plugin_module
        assert ep.dist is not None and ep.dist.name == self.distribution

    def test_bad_options_are_refused_naming_the_key(self, bad_option):
        from specplug.methods import OptionsError

        options, text = bad_option
        with pytest.raises(OptionsError) as err:
            self.spec().validate_options(options)
        assert text in str(err.value), f"{err.value} does not name {text!r}"
        assert f"'{self.registered_id()}'" in str(err.value), f"{err.value} does not name the {self.kind}"


class MethodRegistrationConformance(_PluginWiring):
    """Base class of a method plugin's registration tests; see the module docstring."""

    kind = "method"
    #: the method id
    method: ClassVar[str]
    #: the proposer class the method builds
    proposer_class: ClassVar[type]
    #: whether the method drafts trees (``MethodSpec.tree``)
    tree: ClassVar[bool] = False
    #: ``MethodSpec.needs``
    needs: ClassVar[frozenset] = frozenset()
    #: every method id the plugin module registers (just this one when left unset)
    plugin_methods: ClassVar[tuple[str, ...] | None] = None

    def registered_id(self) -> str:
        return self.method

    @pytest.fixture
    def method_options(self) -> dict[str, Any]:
        """The options the build test passes: :attr:`options` unless a subclass overrides this fixture."""
        return dict(self.options)

    def check_spec(self, spec) -> None:
        assert spec.id == self.method
        assert spec.options is self.options_class
        assert spec.tree == self.tree
        assert spec.needs == frozenset(self.needs)

    def check_built(self, proposer, options) -> None:
        """Checks of a proposer built with ``options``; subclasses extend it with method-specific ones."""
        spec = self.spec()
        assert isinstance(proposer, self.proposer_class), f"built a {type(proposer).__name__}"
        assert proposer.options == spec.validate_options(options), "the proposer does not hold the options it was built with"
        assert frozenset(proposer.needs) == spec.needs, "the proposer asks the engine for other needs than its spec declares"

    def test_the_plugin_module_registers_the_method(self):
        module = importlib.import_module(self.plugin_module)
        specs: list = []
        module.specplug_register_methods(specs.append)
        assert [s.id for s in specs] == list(self.plugin_methods or (self.method,))
        self.check_spec(next(s for s in specs if s.id == self.method))

    def test_the_registry_loads_it_from_the_installed_distribution(self):
        from specplug.registry import build_registry

        registry = build_registry()
        source = registry.method_sources[self.method]
        assert source.startswith(f"plugin '{self.entry_point_name()}'") and self.distribution in source, source
        assert not [p for p in registry.problems if self.method in p], registry.problems
        self.check_spec(registry.method(self.method))

    def test_the_plugin_module_alone_registers_it_with_a_card_that_matches(self):
        from specplug.catalogue_checks import facet_problems, implementation_problems
        from specplug.registry import build_registry

        registry = build_registry(load_entry_points=False, extra_plugins=[importlib.import_module(self.plugin_module)])
        assert not [p for p in registry.problems if self.method in p], registry.problems
        spec = registry.method(self.method)
        self.check_spec(spec)
        card = registry.cards[self.method]
        assert facet_problems(card) == []
        assert implementation_problems(card, spec) == []

    def test_builds_a_proposer_with_the_options(self, method_options):
        self.check_built(self.spec().build(method_options), method_options)


class VerifierRegistrationConformance(_PluginWiring):
    """Base class of a verifier plugin's registration tests; see the module docstring."""

    kind = "verifier"
    #: the verifier id
    verifier: ClassVar[str]
    #: the verifier class the spec builds
    verifier_class: ClassVar[type]
    #: whether the verifier is lossless (``Verifier.lossless``)
    lossless: ClassVar[bool]
    #: every verifier id the plugin module registers (just this one when left unset)
    plugin_verifiers: ClassVar[tuple[str, ...] | None] = None

    def registered_id(self) -> str:
        return self.verifier

    @pytest.fixture
    def verifier_options(self) -> dict[str, Any]:
        """The options the build test passes: :attr:`options` unless a subclass overrides this fixture."""
        return dict(self.options)

    def check_spec(self, spec) -> None:
        assert spec.id == self.verifier
        assert spec.options is self.options_class

    def test_the_plugin_module_registers_the_verifier(self):
        module = importlib.import_module(self.plugin_module)
        specs: list = []
        module.specplug_register_verifiers(specs.append)
        assert [s.id for s in specs] == list(self.plugin_verifiers or (self.verifier,))
        self.check_spec(next(s for s in specs if s.id == self.verifier))

    def test_the_registry_loads_it_from_the_installed_distribution(self):
        from specplug.registry import build_registry

        registry = build_registry()
        source = registry.verifier_sources[self.verifier]
        assert source.startswith(f"plugin '{self.entry_point_name()}'") and self.distribution in source, source
        assert not [p for p in registry.problems if self.verifier in p], registry.problems
        self.check_spec(registry.verifier(self.verifier))

    def test_the_plugin_module_alone_registers_it(self):
        from specplug.registry import build_registry

        registry = build_registry(load_entry_points=False, extra_plugins=[importlib.import_module(self.plugin_module)])
        assert not [p for p in registry.problems if self.verifier in p], registry.problems
        self.check_spec(registry.verifier(self.verifier))

    def test_builds_a_verifier_with_the_options(self, verifier_options):
        verifier = self.spec().build(verifier_options)
        assert isinstance(verifier, self.verifier_class), f"built a {type(verifier).__name__}"
        assert bool(verifier.lossless) == self.lossless
