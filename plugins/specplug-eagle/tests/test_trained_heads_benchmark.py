"""benchmarks/trained_heads.py in quick mode, on a tiny random target with random heads (the real run
needs heads trained for SmolLM2 and takes an hour; the integrator runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "trained_heads.py"


def run(tmp_path, *extra) -> dict:
    from specplug.testing import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", hidden=128, num_layers=3)  # EAGLE-3 fuses three layers
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--model", str(model), "--out-dir", str(tmp_path / "out"),
                           "--heads-dir", str(tmp_path / "no-heads"), *extra],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out" / "trained_heads_quick.json").read_text())


def test_quick_reference_run_reports_every_method_with_outputs_identical_to_plain(tmp_path):
    results = run(tmp_path, "--engines", "reference")
    ref = results["reference"]
    assert ref["methods"] == ["plain", "pld", "medusa", "eagle", "eagle2", "eagle3"]
    for method in ref["methods"][1:]:
        overall = ref["summary"][method]["overall"]
        assert overall["identical"] == overall["prompts"] == 2, method  # lossless: same greedy output as plain
        assert overall["mat"] >= 1.0
        cost = ref["cost"][method]
        assert cost["draft_s"] > 0 and cost["verify_s"] > 0
    assert all(not h["trained"] for h in results["heads"].values())  # random heads, said so in the report
    text = (tmp_path / "out" / "trained_heads_quick.md").read_text()
    assert "random weights" in text and "## Goals" in text and "EAGLE-3 MAT >= 2.5" in text


@pytest.mark.vllm
def test_quick_vllm_run_loads_the_heads_natively_with_outputs_identical_to_plain(tmp_path):
    pytest.importorskip("vllm")
    results = run(tmp_path, "--engines", "vllm", "--vllm-configs", "plain,eagle,eagle3")
    for name in ("eagle", "eagle3"):
        entry = results["vllm"][name]
        assert "error" not in entry, entry
        overall = entry["categories"]["overall"]
        assert overall["identical"] == overall["prompts"] and entry["batch"]["identical"] == overall["prompts"]
