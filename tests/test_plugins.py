"""The plugin system: entry-point discovery, broken plugins, allow-list, duplicate ids."""

from __future__ import annotations

import json
import os
import types

import numpy as np
import pytest

from cli_helpers import run_specplug
from specplug import BaseProposer, Draft, MethodCard, MethodSpec, OptionsError, ProposalRequest, hookimpl
from specplug.plugins import DEFAULT_PLUGINS, get_plugin_manager
from specplug.registry import RegistryError, build_registry


def _env_with(site) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_third_party_plugin_is_discovered_through_its_entry_point(third_party_site):
    result = run_specplug("list", "--json", env=_env_with(third_party_site), check=True)
    cards = {c["id"]: c for c in json.loads(result.stdout)}
    assert "hello_bigram" in cards
    assert cards["hello_bigram"]["runnable"] is True
    assert cards["hello_bigram"]["generation"] == "ngram"


def test_broken_plugin_is_reported_and_harmless(third_party_site):
    result = run_specplug("plugins", "--json", env=_env_with(third_party_site), check=True)
    records = {p["name"]: p for p in json.loads(result.stdout)}
    assert records["broken"]["ok"] is False
    assert "specplug_missing_dependency" in records["broken"]["error"]
    assert records["broken"]["distribution"] == "specplug-broken"
    assert records["hello"]["ok"] is True
    assert records["hello"]["distribution"] == "specplug-hello"
    assert records["hello"]["version"] == "0.1.0"
    # the rest of the CLI still works with the broken plugin installed
    shown = run_specplug("show", "hello_bigram", env=_env_with(third_party_site), check=True)
    assert "Bigram cache (example)" in shown.stdout


def test_allow_list_limits_entry_points(third_party_site):
    env = _env_with(third_party_site) | {"SPECPLUG_LOAD_PLUGINS": "hello"}
    records = {p["name"] for p in json.loads(run_specplug("plugins", "--json", env=env, check=True).stdout)}
    assert "hello" in records and "broken" not in records
    env["SPECPLUG_LOAD_PLUGINS"] = ""
    records = {p["name"] for p in json.loads(run_specplug("plugins", "--json", env=env, check=True).stdout)}
    assert records == set(DEFAULT_PLUGINS)


def test_third_party_method_runs_its_proposer(third_party_site, monkeypatch):
    monkeypatch.syspath_prepend(str(third_party_site))
    import importlib.metadata

    importlib.invalidate_caches()
    registry = build_registry()
    spec = registry.method("hello_bigram")
    proposer = spec.build({"max_draft": 3})
    history = np.array([5, 6, 7, 5, 6, 9, 5], dtype=np.int64)
    proposer.start_request("r", history)
    draft = proposer.propose(ProposalRequest("r", history, num_prompt_tokens=7, max_tokens=8))
    assert draft.token_ids.tolist() == [6, 9, 5]
    with pytest.raises(OptionsError, match="max_tokens"):
        spec.build({"max_tokens": 3})


def _card(card_id: str) -> MethodCard:
    return MethodCard(
        id=card_id, name=card_id, summary="test card", generation="ngram", refinement="single_pass_linear",
        acceptance="exact_greedy", lossless=True, training="none",
    )


class _EchoProposer(BaseProposer):
    def __init__(self, options):
        pass

    def propose(self, request):
        return Draft.chain([int(request.token_ids[-1])])


def _plugin(name: str, spec: MethodSpec):
    module = types.ModuleType(name)

    @hookimpl
    def specplug_register_methods(register):
        register(spec)

    module.specplug_register_methods = specplug_register_methods
    return module


def test_duplicate_method_ids_are_rejected_naming_both_sources():
    spec = MethodSpec(id="dup_method", factory=_EchoProposer, card=_card("dup_method"))
    first, second = _plugin("first_plugin", spec), _plugin("second_plugin", spec)
    registry = build_registry(load_entry_points=False, extra_plugins=[first, second])
    problem = next(p for p in registry.problems if "dup_method" in p)
    assert "first_plugin" in problem and "second_plugin" in problem
    assert registry.method_sources["dup_method"].startswith("plugin 'first_plugin'")
    with pytest.raises(RegistryError, match="first_plugin.*second_plugin"):
        build_registry(load_entry_points=False, extra_plugins=[first, second], strict=True)


def test_plugin_card_clashing_with_catalogue_card_is_rejected():
    registry = build_registry(load_entry_points=False)
    existing = next(iter(registry.cards))
    clash = _plugin("clash_plugin", MethodSpec(id=existing, factory=_EchoProposer, card=_card(existing)))
    registry = build_registry(load_entry_points=False, extra_plugins=[clash])
    problem = next(p for p in registry.problems if existing in p)
    assert f"registry/methods/{existing}.yaml" in problem and "clash_plugin" in problem


def test_method_without_card_is_reported():
    orphan = _plugin("orphan_plugin", MethodSpec(id="no_such_card_anywhere", factory=_EchoProposer))
    registry = build_registry(load_entry_points=False, extra_plugins=[orphan])
    assert any("no_such_card_anywhere" in p and "has no card" in p for p in registry.problems)
    assert "no_such_card_anywhere" not in registry.methods


def test_hook_specplug_register_methods():
    spec = MethodSpec(id="hook_method", factory=_EchoProposer, card=_card("hook_method"))
    registry = build_registry(load_entry_points=False, extra_plugins=[_plugin("hook_plugin", spec)])
    assert registry.method("hook_method") is spec
    assert registry.card("hook_method").name == "hook_method"


def test_hook_specplug_register_cards():
    module = types.ModuleType("cards_plugin")

    @hookimpl
    def specplug_register_cards(register):
        register(_card("extra_catalogue_card"))

    module.specplug_register_cards = specplug_register_cards
    registry = build_registry(load_entry_points=False, extra_plugins=[module])
    assert "extra_catalogue_card" in registry.cards
    assert not registry.is_runnable("extra_catalogue_card")


def test_hook_specplug_register_verifiers():
    from specplug import VerifierSpec
    from specplug.taxonomy import Scope

    module = types.ModuleType("verifier_plugin")
    card = _card("test_verifier").model_copy(update={"scope": Scope.verification, "generation": None})

    @hookimpl
    def specplug_register_verifiers(register):
        register(VerifierSpec(id="test_verifier", factory=lambda options: object(), card=card))

    module.specplug_register_verifiers = specplug_register_verifiers
    registry = build_registry(load_entry_points=False, extra_plugins=[module])
    assert registry.verifier("test_verifier").id == "test_verifier"


def test_hook_specplug_register_objectives():
    from specplug.train.spec import ObjectiveSpec

    module = types.ModuleType("objective_plugin")
    spec = ObjectiveSpec(id="hook_head", factory=lambda cfg: object(), help="a test head")

    @hookimpl
    def specplug_register_objectives(register):
        register(spec)
        register(ObjectiveSpec(id="hook_head", factory=lambda cfg: None))  # a duplicate is reported, not kept

    module.specplug_register_objectives = specplug_register_objectives
    registry = build_registry(load_entry_points=False, extra_plugins=[module])
    assert registry.objective("hook-head") is spec
    assert any("duplicate objective 'hook_head'" in p for p in registry.problems)
    with pytest.raises(KeyError, match="unknown training objective 'hook_hed'.*hook_head"):
        registry.objective("hook_hed")


def test_hook_specplug_register_bench_kinds():
    from specplug.bench.kind import BenchKindSpec

    module = types.ModuleType("bench_kind_plugin")
    spec = BenchKindSpec(id="hook_kind", run=lambda suite, quick, out_dir: [])

    @hookimpl
    def specplug_register_bench_kinds(register):
        register(spec)

    module.specplug_register_bench_kinds = specplug_register_bench_kinds
    registry = build_registry(load_entry_points=False, extra_plugins=[module])
    assert registry.bench_kind("hook_kind") is spec
    with pytest.raises(KeyError, match="unknown bench kind"):
        registry.bench_kind("hook_knd")


def test_hook_specplug_register_commands():
    # The built-in CLI loads plugin commands through this hook; a plugin without it is fine.
    import click

    from specplug.cli import SpecplugGroup

    module = types.ModuleType("command_plugin")

    @hookimpl
    def specplug_register_commands(cli):
        cli.add_command(click.Command("hello-cmd", callback=lambda: click.echo("hello")))

    module.specplug_register_commands = specplug_register_commands
    plugin_set = get_plugin_manager(load_entry_points=False, extra_plugins=[module])
    group = SpecplugGroup()
    plugin_set.pm.hook.specplug_register_commands(cli=group)
    assert "hello-cmd" in group.commands


def test_plugin_manager_rejects_hookimpls_without_spec():
    module = types.ModuleType("typo_plugin")

    @hookimpl
    def specplug_register_method(register):  # missing 's': no such hook
        pass

    module.specplug_register_method = specplug_register_method
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        get_plugin_manager(load_entry_points=False, extra_plugins=[module])
