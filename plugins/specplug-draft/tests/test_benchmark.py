"""The model_drafters suite kind (benchmarks/suites/model_drafters.toml) in its quick mode: it runs, every
method's output equals plain decoding, and the document carries the cost split and the goals."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_the_quick_benchmark_runs_and_reports_the_goals(tmp_path):
    from specplug.bench.suites import run_suite

    suite = tmp_path / "model_drafters.toml"
    suite.write_text('name = "model_drafters"\nkind = "model_drafters"\n[bench]\nmethods = ["pld", "sps"]\n'
                     'use_cache = false\nprogress = false\n[quick]\nper_category = 1\nmax_prompts = 2\n'
                     'max_new_tokens = 12\nks = [3]\ndrafts = ["0-3"]\nvllm = false\n')
    written = run_suite(suite, quick=True, out_dir=tmp_path / "out")
    assert {p.name for p in written} == {"model_drafters_k3_quick.json", "model_drafters_k3_quick.md"}
    doc = json.loads((tmp_path / "out" / "model_drafters_k3_quick.json").read_text())
    assert doc["schema"] == "specplug-bench/1" and doc["extra"]["kind"] == "model_drafters"
    rows = doc["extra"]["cost"]
    assert {"plain", "pld", "sps:0-3", "sps:0-3/v8192"} <= {r["method"] for r in rows}
    assert all(r["identical"] == r["prompts"] for r in rows if r["method"] != "plain")
    goals = doc["extra"]["goals"]
    assert [g["goal"] for g in goals][1:] == ["best model drafter MAT >= 1.3x pld's", "speedup > 1.0 at batch 1 (reference engine)"]
    text = (tmp_path / "out" / "model_drafters_k3_quick.md").read_text()
    assert text.startswith("# Reference engine: model drafters") and "## Goals" in text and "## Where the time goes" in text
