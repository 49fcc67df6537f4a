"""Suite files (``specplug bench --suite``), conversation prompts and the named repetition workloads."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from specplug.bench.prompts import PromptError, load_prompts
from specplug.bench.suites import SuiteError, load_suite

SUITES = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "suites").glob("*.toml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_committed_suites_are_valid(path):
    suite = load_suite(path)
    assert suite.name == path.stem
    if suite.kind == "bench":
        assert suite.bench.get("methods")
        return
    from specplug.bench.suites import bench_kind, settings_of

    defaults = bench_kind(suite).defaults
    assert defaults is not None, f"the {suite.kind} kind does not say which [bench] keys it knows"
    settings_of(suite, False, defaults)  # every key known to the kind
    settings_of(suite, True, defaults)


def test_set_overrides_the_suite_and_is_recorded_in_its_command():
    from specplug.bench.suites import bench_kind, parse_overrides, settings_of

    path = next(p for p in SUITES if p.stem == "vllm_repetition")
    suite = load_suite(path)
    suite.overrides = parse_overrides(["k=4", "max_tokens=64", 'sets=["agentic","spec-bench-mt"]'])
    settings = settings_of(suite, False, bench_kind(suite).defaults)
    assert (settings["k"], settings["max_tokens"], settings["sets"]) == (4, 64, ["agentic", "spec-bench-mt"])
    assert settings["engine_prompts"] == suite.bench["engine_prompts"]  # the file's other settings stay
    command = suite.command(False)
    assert "--set k=4" in command and "--set max_tokens=64" in command
    words = shlex.split(command)  # as a shell reads it: values with spaces or quotes are quoted
    again = parse_overrides([words[i + 1] for i, word in enumerate(words) if word == "--set"])
    assert again == suite.overrides  # the recorded command runs the same settings


def test_set_rejects_a_pair_without_a_value_and_unknown_keys():
    from specplug.bench.suites import bench_kind, parse_overrides, settings_of

    with pytest.raises(SuiteError, match="KEY=VALUE"):
        parse_overrides(["per_category"])
    suite = load_suite(next(p for p in SUITES if p.stem == "vllm_repetition"))
    suite.overrides = parse_overrides(["max_tokns=1"])
    with pytest.raises(SuiteError, match="max_tokns"):
        settings_of(suite, False, bench_kind(suite).defaults)


def test_every_runnable_kind_exposes_the_suite_runner_signature():
    """A kind's ``run`` is what ``specplug bench --suite`` calls; a benchmark helper of the same name
    defined later in its module (or earlier and shadowed) would break the suite or its script."""
    import inspect

    from specplug.registry import get_registry

    kinds = get_registry().bench_kinds
    assert {"bench", "ngram_family", "pld_vs_ngram", "churn", "repetition"} <= set(kinds)
    for kind, spec in kinds.items():
        if spec.run is None:
            continue
        assert list(inspect.signature(spec.run).parameters) == ["suite", "quick", "out_dir"], kind
        module = inspect.getmodule(spec.run)
        if module.__name__.startswith("specplug."):
            assert inspect.getsource(module).count("\ndef run(") == 1, f"{kind}: more than one top-level run()"


def test_builtin_kinds_import_neither_torch_nor_vllm():
    import subprocess
    import sys

    code = ("import sys; from specplug.registry import build_registry; build_registry(load_entry_points=False); "
            "print(sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_kind_no_installed_plugin_registers_names_the_plugin_to_install(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('name = "elsewhere"\nkind = "elsewhere_kind"\nplugin = "specplug-elsewhere"\n')
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert "no installed plugin registers the suite kind 'elsewhere_kind'" in message
    assert "install specplug-elsewhere" in message and "Installed kinds: " in message and "ngram_family" in message


def test_a_kind_that_only_renders_cannot_run(tmp_path, monkeypatch):
    import types

    from specplug import hookimpl, registry
    from specplug.bench.kind import BenchKindSpec

    plugin = types.ModuleType("render_only_plugin")

    @hookimpl
    def specplug_register_bench_kinds(register):
        register(BenchKindSpec(id="render_only", render=lambda results, heading: []))

    plugin.specplug_register_bench_kinds = specplug_register_bench_kinds
    own = registry.build_registry(load_entry_points=False, extra_plugins=[plugin])
    monkeypatch.setattr(registry, "get_registry", lambda: own)
    path = tmp_path / "render_only.toml"
    path.write_text('name = "render_only"\nkind = "render_only"\n')
    with pytest.raises(SuiteError, match="kind 'render_only' only renders documents another kind writes"):
        load_suite(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\nkind = "nosuch"\n[bench]\nmethods = ["pld"]\n', "no installed plugin registers the suite kind 'nosuch'"),
        ('name = "x"\ncolour = 3\n', "colour"),
        ('name = "Has Spaces"\n', "name"),
        ("name = [", "not TOML"),
    ],
)
def test_bad_suites_are_refused_naming_the_file_and_the_problem(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_conversations_are_read_and_checked(tmp_path):
    path = tmp_path / "chat.jsonl"
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Again"}]
    path.write_text(json.dumps({"id": "a", "category": "chat", "messages": turns}) + "\n")
    (prompt,), _ = load_prompts(str(path))
    assert prompt.messages == (("user", "Hi"), ("assistant", "Hello!"), ("user", "Again")) and prompt.text is None
    path.write_text(json.dumps({"id": "a", "messages": turns[:2]}) + "\n")
    with pytest.raises(PromptError, match="last of 'messages' must be the user turn"):
        load_prompts(str(path))


def test_a_workload_not_built_yet_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    with pytest.raises(PromptError, match="python -m specplug.bench.workloads build agentic"):
        load_prompts("agentic")


def test_agentic_workload_sessions_revise_their_own_answers():
    from specplug.bench import workloads

    sessions = workloads._revision_sessions()
    assert {c for c, _, _ in sessions} == {"revise-code", "revise-text"}
    assert all(len(turns) == 1 + len(workloads.CODE_REVISIONS) for _, _, turns in sessions)
    assert len(set(workloads.TICKETS)) == len(workloads.TICKETS) >= 16


@pytest.mark.slow
def test_a_suite_runs_through_the_command_line(tmp_path):
    from click.testing import CliRunner

    from specplug.bench.commands import bench
    from specplug.testing import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", hidden=128)
    prompts = tmp_path / "p.jsonl"
    turns = [{"role": "user", "content": "Count: one two three."}, {"role": "assistant", "content": "one two three"},
             {"role": "user", "content": "Again, twice."}]
    prompts.write_text(json.dumps({"id": "c", "category": "chat", "messages": turns}) + "\n")
    suite = tmp_path / "tiny_suite.toml"
    suite.write_text(f'name = "tiny_suite"\ntitle = "A tiny suite"\n[bench]\nmethods = ["pld"]\nmodel = "{model}"\n'
                     f'prompts = "{prompts}"\nk = 3\nmax_new_tokens = 24\nuse_cache = false\n[quick]\nmax_new_tokens = 6\n')
    from specplug.bench import suites

    out = tmp_path / "out"
    written = suites.run_suite(suite, quick=True, out_dir=out)
    data = json.loads((out / "tiny_suite_quick.json").read_text())
    assert data["schema"] == "specplug-bench/1" and data["methods"] == ["plain", "pld"]
    assert data["meta"]["command"].endswith("--quick") and data["meta"]["title"] == "A tiny suite"
    assert data["summary"]["pld"]["overall"]["identical"] == 1
    assert {p.name for p in written} == {"tiny_suite_quick.json", "tiny_suite_quick.md"}
    result = CliRunner().invoke(bench, ["--quick"])
    assert result.exit_code != 0 and "--quick applies to --suite" in result.output
