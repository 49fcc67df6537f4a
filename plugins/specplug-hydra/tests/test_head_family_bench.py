"""The head_family suite kind in quick mode, on a tiny random target with random heads (the real run,
benchmarks/suites/head_family.toml, needs heads trained for SmolLM2)."""

from __future__ import annotations

import json


def test_quick_run_reports_every_head_lossless_with_its_training_cost(tmp_path):
    from specplug.bench.suites import run_suite
    from specplug.testing import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", hidden=64, num_layers=2)
    suite = tmp_path / "head_family.toml"
    suite.write_text(f'name = "head_family"\nkind = "head_family"\n[bench]\nmodel = "{model}"\n'
                     f'heads_dir = "{tmp_path / "no-heads"}"\n[quick]\nper_category = 1\nmax_new_tokens = 16\n')
    run_suite(suite, quick=True, out_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "head_family_quick.json").read_text())
    assert doc["methods"] == ["plain", "pld", "hydra", "mlp_speculator", "blockwise", "hass", "redrafter"]
    for method in doc["methods"][1:]:
        overall = doc["summary"][method]["overall"]
        assert overall["identical"] == overall["prompts"] == 2, method  # lossless: same greedy output as plain
        assert doc["extra"]["cost"][method]["draft_s"] > 0
    assert all(not t["trained"] for t in doc["extra"]["training"].values())
    text = (tmp_path / "out" / "head_family_quick.md").read_text()
    assert "## Training cost" in text and "random weights" in text
