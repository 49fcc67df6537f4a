"""The trained_heads suite kind in quick mode, on a tiny random target with random heads (the real run,
benchmarks/suites/trained_heads.toml, needs heads trained for SmolLM2 and takes an hour)."""

from __future__ import annotations

import json

import pytest


def run(tmp_path, *engines: str, vllm_configs=()) -> dict:
    from specplug.bench.suites import run_suite
    from specplug.testing import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", hidden=128, num_layers=3)  # EAGLE-3 fuses three layers
    configs = f"vllm_configs = {json.dumps(list(vllm_configs))}\n" if vllm_configs else ""
    suite = tmp_path / "trained_heads.toml"
    suite.write_text(f'name = "trained_heads"\nkind = "trained_heads"\n[bench]\nmodel = "{model}"\n'
                     f'heads_dir = "{tmp_path / "no-heads"}"\n{configs}[quick]\nper_category = 1\nmax_new_tokens = 24\n'
                     f'engines = {json.dumps(list(engines))}\n')
    run_suite(suite, quick=True, out_dir=tmp_path / "out")
    return {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")}


def test_quick_reference_run_reports_every_method_with_outputs_identical_to_plain(tmp_path):
    ref = run(tmp_path, "reference")["trained_heads_quick"]
    assert ref["methods"] == ["plain", "pld", "medusa", "eagle", "eagle2", "eagle3"]
    for method in ref["methods"][1:]:
        overall = ref["summary"][method]["overall"]
        assert overall["identical"] == overall["prompts"] == 2, method  # lossless: same greedy output as plain
        assert overall["mat"] >= 1.0
        cost = ref["extra"]["cost"][method]
        assert cost["draft_s"] > 0 and cost["verify_s"] > 0
    assert all(not h["trained"] for h in ref["extra"]["heads"].values())  # random heads, said so in the report
    text = (tmp_path / "out" / "trained_heads_quick.md").read_text()
    assert "random weights" in text and "## Goals" in text and "EAGLE-3 MAT >= 2.5" in text


@pytest.mark.vllm
def test_quick_vllm_run_loads_the_heads_natively_with_outputs_identical_to_plain(tmp_path):
    pytest.importorskip("vllm")
    doc = run(tmp_path, "vllm", vllm_configs=["plain", "eagle", "eagle3"])["trained_heads_vllm_quick"]
    assert not doc["extra"]["failed"]
    for name in ("eagle@native", "eagle3@native"):
        overall = doc["summary"][name]["overall"]
        assert overall["identical"] == overall["prompts"] and doc["extra"]["batch"][name]["identical"] == overall["prompts"]
