"""benchmarks/model_drafters.py in its quick mode: it runs, and every method's output equals plain decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "model_drafters.py"


@pytest.mark.slow
def test_the_quick_benchmark_runs_and_reports_the_goals(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--no-vllm", "--no-cache", "--no-progress", "--max-prompts", "2",
           "--methods", "pld,sps", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "model_drafters.json").read_text())
    methods = {r["method"] for r in doc["reference"]}
    assert {"plain", "pld", "sps:0-3", "sps:0-3/v8192"} <= methods
    assert all(r["identical"] == r["prompts"] for r in doc["reference"] if r["method"] != "plain")
    assert [g["goal"] for g in doc["goals"]][1:] == ["best model drafter MAT >= 1.3x pld's", "speedup > 1.0 at batch 1 (reference engine)"]
    assert (tmp_path / "model_drafters_k3.md").read_text().startswith("# Reference engine: model drafters")
    assert "## Goals" in (tmp_path / "model_drafters.md").read_text()
