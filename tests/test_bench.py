"""specplug bench: metrics, the results document, prompt sets, and the runner end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specplug import BaseProposer, Draft, MethodSpec, hookimpl
from specplug.bench.metrics import PromptRecord, aggregate, summarize
from specplug.bench.prompts import PromptError, load_prompts, spec_bench_path
from specplug.bench.results import load_results, render_markdown
from specplug.bench.documents import write_outputs
from specplug.bench.runner import BenchConfig, BenchError, run_bench
from specplug.registry import build_registry
from specplug.taxonomy import MethodCard

# -- metrics --------------------------------------------------------------------------------------------


def rec(pid, cat, method, new, steps, drafted=0, accepted=0, seconds=1.0, out=None):
    return PromptRecord(pid, cat, method, new, steps, drafted, accepted, seconds, output_ids=out or [1, 2, 3])


def test_aggregates_are_ratios_of_sums():
    overall, cats = aggregate([rec("1", "a", "m", 10, 5, 8, 5, 1.0), rec("2", "b", "m", 30, 10, 20, 10, 2.0)])
    assert overall.mat == 40 / 15
    assert overall.acceptance_rate == 15 / 28
    assert overall.tokens_per_s == 40 / 3.0
    assert list(cats) == ["a", "b"] and cats["a"].mat == 2.0


def test_speedup_and_identity_against_plain_on_shared_prompts_only():
    records = [
        rec("1", "a", "plain", 10, 10, seconds=2.0),
        rec("2", "a", "plain", 10, 10, seconds=2.0),
        rec("1", "a", "m", 10, 5, 8, 5, seconds=1.0),
        rec("2", "a", "m", 10, 10, 8, 0, seconds=4.0, out=[9]),
        rec("3", "a", "m", 10, 2, 8, 8, seconds=0.1),  # no plain run of prompt 3: left out of the comparison
    ]
    summary = summarize(records, ["plain", "m"])
    m = summary["m"]["overall"]
    assert m.speedup == pytest.approx((20 / 5.0) / (20 / 4.0))
    assert m.identical == 1
    assert m.prompts == 3 and m.mat == 30 / 17  # the aggregate itself still covers every prompt
    assert summary["plain"]["overall"].speedup == 1.0 and summary["plain"]["overall"].mat == 1.0
    assert summary["m"]["categories"]["a"].speedup == pytest.approx(m.speedup)


def test_nothing_drafted_means_no_acceptance_rate():
    overall, _ = aggregate([rec("1", "a", "plain", 4, 4)])
    assert overall.acceptance_rate is None and overall.mat == 1.0


# -- prompts --------------------------------------------------------------------------------------------


def test_spec_bench_takes_n_per_category_in_file_order():
    try:
        spec_bench_path()
    except PromptError as err:
        pytest.skip(str(err))
    prompts, label = load_prompts("spec-bench:2")
    cats = [p.category for p in prompts]
    assert label == "spec-bench:2"
    assert len(set(cats)) == 13 and all(cats.count(c) == 2 for c in set(cats))
    assert prompts[0].text and prompts[0].id == "81"


def test_jsonl_prompts_and_their_errors(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text('{"prompt": "hi", "category": "x", "id": "p1"}\n\n{"turns": ["one", "two"]}\n{"token_ids": [1, 2]}\n')
    prompts, label = load_prompts(str(good))
    assert [(p.id, p.category, p.text, p.token_ids) for p in prompts] == [
        ("p1", "x", "hi", None), ("3", "default", "one", None), ("4", "default", None, (1, 2))
    ]
    assert label == "p.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"category": "x"}\n')
    with pytest.raises(PromptError, match="bad.jsonl:1: a prompt needs"):
        load_prompts(str(bad))
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"prompt": "a", "id": 1}\n{"prompt": "b", "id": 1}\n')
    with pytest.raises(PromptError, match="ids repeat"):
        load_prompts(str(dup))
    with pytest.raises(PromptError, match="no such file"):
        load_prompts(str(tmp_path / "missing.jsonl"))
    with pytest.raises(PromptError, match="integer"):
        load_prompts("spec-bench:x")


# -- the runner on a tiny random model ------------------------------------------------------------------


class RepeatProposer(BaseProposer):
    """Guesses that the token two back comes again (right on an alternating history, wrong elsewhere)."""

    def __init__(self, options):
        pass

    def propose(self, request):
        ids = request.token_ids
        if len(ids) < 2:
            return Draft.empty()
        pattern = [int(ids[-2]), int(ids[-1])]
        return Draft.chain([pattern[i % 2] for i in range(request.max_tokens)])


class BenchTestPlugin:
    @hookimpl
    def specplug_register_methods(self, register):
        card = MethodCard(
            id="bench_repeat", name="Repeat (test)", summary="Test method.", generation="ngram",
            refinement="single_pass_linear", acceptance="exact_greedy", lossless=True, training="none",
        )
        register(MethodSpec(id="bench_repeat", factory=RepeatProposer, card=card, max_k=6))


PROMPTS = [
    {"id": "alt", "category": "repetitive", "token_ids": [5, 6, 5, 6, 5, 6, 5, 6]},
    {"id": "alt2", "category": "repetitive", "token_ids": [7, 8, 7, 8, 7, 8]},
    {"id": "mixed", "category": "mixed", "token_ids": [1, 2, 3, 4, 20, 30]},
]


@pytest.fixture(scope="module")
def tiny_model():
    from specplug.testing import tiny_llama

    return tiny_llama(vocab_size=64, seed=3)


@pytest.fixture
def registry():
    return build_registry(load_entry_points=False, extra_plugins=[BenchTestPlugin()])


def write_prompts(path: Path, rows=PROMPTS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_runs_plain_and_method_on_the_same_prompts_and_resumes_from_cache(tmp_path, tiny_model, registry):
    prompts_file = write_prompts(tmp_path / "p.jsonl")
    cfg = BenchConfig(methods=["bench_repeat"], model="tiny", prompts=str(prompts_file), k=4, max_new_tokens=10,
                      cache_dir=tmp_path / "cache")
    first = run_bench(cfg, model=tiny_model, registry=registry, show_progress=False)
    assert first.methods == ["plain", "bench_repeat"]
    assert len(first.records) == 6
    plain, method = first.summary["plain"]["overall"], first.summary["bench_repeat"]["overall"]
    assert plain["mat"] == 1.0 and plain["drafted"] == 0
    assert method["drafted"] > 0 and method["identical"] == 3  # greedy verification is lossless
    assert method["mat"] == pytest.approx(method["new_tokens"] / method["steps"])
    assert first.categories == ["repetitive", "mixed"]
    assert first.meta["resumed_from_cache"] == 0 and first.meta["dtype"] == "float32"

    # an interrupted run resumes: every (prompt, method) comes back from the cache
    again = run_bench(cfg, model=tiny_model, registry=registry, show_progress=False)
    assert again.meta["resumed_from_cache"] == 6
    assert again.summary["bench_repeat"]["overall"]["new_tokens"] == method["new_tokens"]

    # a prompt whose content changed is run again; the others stay cached
    changed = [dict(PROMPTS[0], token_ids=[5, 6, 5, 6, 9])] + PROMPTS[1:]
    write_prompts(prompts_file, changed)
    third = run_bench(cfg, model=tiny_model, registry=registry, show_progress=False)
    assert third.meta["resumed_from_cache"] == 4


def test_outputs_json_markdown_and_plot(tmp_path, tiny_model, registry):
    cfg = BenchConfig(methods=["bench_repeat"], model="tiny", prompts=str(write_prompts(tmp_path / "p.jsonl")), k=3,
                      max_new_tokens=6, use_cache=False, title="tiny run")
    results = run_bench(cfg, model=tiny_model, registry=registry, show_progress=False)
    written = write_outputs(results, tmp_path / "out", "tiny")
    assert [p.name for p in written] == ["tiny.json", "tiny.md", "tiny.png"]
    loaded = load_results(tmp_path / "out/tiny.json")
    assert (tmp_path / "out/tiny.md").read_text() == render_markdown(loaded)
    assert (tmp_path / "out/tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out/tiny.md").read_text()
    assert "# tiny run" in md and "| **all** | 3 |" in md and "model **tiny**" in md


def test_bad_settings_are_refused_clearly(tmp_path, tiny_model, registry):
    prompts = str(write_prompts(tmp_path / "p.jsonl"))
    with pytest.raises(BenchError, match="at most 6 tokens"):
        run_bench(BenchConfig(methods=["bench_repeat"], prompts=prompts, k=7, use_cache=False), model=tiny_model,
                  registry=registry, show_progress=False)
    with pytest.raises(BenchError, match="leave it out"):
        run_bench(BenchConfig(methods=["plain"], prompts=prompts), model=tiny_model, registry=registry, show_progress=False)
    with pytest.raises(BenchError, match="--engine vllm"):
        run_bench(BenchConfig(methods=["pld@native"], prompts=prompts), model=tiny_model, registry=registry, show_progress=False)
    with pytest.raises(KeyError, match="bench_repaet"):
        run_bench(BenchConfig(methods=["bench_repaet"], prompts=prompts, use_cache=False), model=tiny_model,
                  registry=registry, show_progress=False)


def test_text_prompts_need_a_tokenizer(tmp_path, tiny_model, registry):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "hello"}\n')
    with pytest.raises(BenchError, match="no tokenizer"):
        run_bench(BenchConfig(methods=["bench_repeat"], prompts=str(path), use_cache=False), model=tiny_model,
                  registry=registry, show_progress=False)


# -- the command line, with a real tokenizer (SmolLM2's, on a tiny random model) -------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from specplug.testing import tiny_model_dir

    # hidden 128 with 4 heads: head_dim 32, the smallest that vLLM's CPU attention supports
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-model"), hidden=128)


@pytest.mark.slow
def test_bench_command_prints_json_and_writes_reports(tmp_path, tiny_dir):
    from click.testing import CliRunner

    from specplug.bench.commands import bench

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "x", "category": "chat", "prompt": "Say one two three one two three."}\n')
    args = ["--methods", "pld", "--model", str(tiny_dir), "--prompts", str(prompts), "--k", "3",
            "--max-new-tokens", "8", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "specplug-bench/1" and data["methods"] == ["plain", "pld"]
    assert data["summary"]["pld"]["overall"]["identical"] == 1
    assert data["meta"]["chat_template"] is True
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bench.json", "bench.md", "bench.png"]

    bad = CliRunner().invoke(bench, args[:-1] + ["--option", "nosuch.key=1"])
    assert bad.exit_code != 0 and "not in --methods" in bad.output


@pytest.mark.vllm
def test_vllm_engine_counts_drafts_and_matches_plain(tmp_path, tiny_dir):
    """Each configuration in its own vLLM process; counters from LLM.get_metrics() differences."""
    pytest.importorskip("vllm")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "r", "category": "rep", "prompt": "Repeat: one two three one two three one two three"}\n')
    cfg = BenchConfig(methods=["pld", "pld@native"], engine="vllm", model=str(tiny_dir), prompts=str(prompts), k=4,
                      max_new_tokens=16, cache_dir=tmp_path / "cache")
    results = run_bench(cfg, show_progress=False)
    for method in ("pld", "pld@native"):
        overall = results.summary[method]["overall"]
        assert overall["identical"] == 1, method  # greedy speculation is lossless in vLLM too
        assert overall["new_tokens"] == results.summary["plain"]["overall"]["new_tokens"]
    assert results.meta["vllm_version"]
    again = run_bench(cfg, show_progress=False)  # everything cached: no engine starts
    assert again.meta["resumed_from_cache"] == 3
