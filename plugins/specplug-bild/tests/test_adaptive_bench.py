"""The adaptive_methods suite kind: its figures from per-prompt records, its goals, and the suite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from specplug_bild.adaptive_bench import DEFAULTS, agreement, goals, summarize


def _record(tokens, steps, drafted, accepted, seconds, draft_s, verify_s, identical=True, agree=1.0, loglik=None):
    return {"id": "p", "category": "c", "new_tokens": tokens, "steps": steps, "drafted": drafted, "accepted": accepted,
            "seconds": seconds, "draft_s": draft_s, "verify_s": verify_s, "identical": identical, "agreement": agree,
            "loglik": loglik}


def test_agreement_counts_positions_over_the_longer_output():
    assert agreement([1, 2, 3, 4], [1, 9, 3, 4]) == 0.75
    assert agreement([1, 2], [1, 2, 3, 4]) == 0.5


def test_rows_and_goals_from_records():
    records = {
        "plain": [_record(20, 20, 0, 0, 2.0, 0.0, 2.0, loglik=-1.0)],
        "sps:k=1": [_record(20, 12, 12, 8, 2.5, 1.0, 1.4)],
        "sps:k=3": [_record(20, 8, 24, 12, 4.0, 2.5, 1.4)],
        "bild:fb=0.5 rb=2.0": [_record(20, 10, 12, 10, 2.2, 1.0, 1.1, identical=False, agree=0.5, loglik=-1.2)],
    }
    rows = {r["method"]: r for r in summarize(records)}
    plain, k1, bild = rows["plain"], rows["sps:k=1"], rows["bild:fb=0.5 rb=2.0"]
    assert plain["speedup"] == pytest.approx(1.0) and plain["mat"] == 1.0
    assert k1["mat"] == pytest.approx(20 / 12) and k1["draft_len"] == 1.0 and k1["speedup"] == pytest.approx(2.0 / 2.5)
    assert k1["draft_ms_per_step"] == pytest.approx(1000 / 12) and k1["overhead_ms_per_step"] == pytest.approx(100 / 12)
    assert bild["agreement"] == 0.5 and bild["loglik"] == -1.2 and bild["identical"] == 0
    (goal,) = goals(list(rows.values()))
    assert goal["met"] is True and "sps:k=1" in goal["goal"]  # 0.91x beats k=1's 0.80x


def test_the_suite_names_only_known_settings():
    import tomllib

    suite = tomllib.loads((Path(__file__).resolve().parents[3] / "benchmarks/suites/adaptive_methods.toml").read_text())
    assert suite["kind"] == "adaptive_methods"
    assert set(suite["bench"]) <= set(DEFAULTS) and set(suite["quick"]) <= set(DEFAULTS)


def test_a_specdec_pp_head_for_another_draft_is_refused_with_the_fix(tmp_path):
    import json

    from specplug_bild.adaptive_bench import _check_specdec_pp_head

    with pytest.raises(SystemExit, match="holds no trained head"):
        _check_specdec_pp_head(str(tmp_path), "0-1")
    (tmp_path / "config.json").write_text(json.dumps({"draft_layers": [0, 1, 2]}))
    with pytest.raises(SystemExit, match="retrain it with --draft-layers 0-1"):
        _check_specdec_pp_head(str(tmp_path), "0-1")
    _check_specdec_pp_head(str(tmp_path), "0-2")  # the drafter's own layers: accepted


def test_the_page_names_how_each_head_was_trained(tmp_path):
    from types import SimpleNamespace

    from specplug.kit.heads import HeadMetadata

    from specplug_bild.adaptive_bench import head_records

    HeadMetadata(method="eesd", target={}, hidden_state_layers=[-1], draft_vocab_size=8,
                 training={"steps": 7, "seconds": 3, "held_out": {"accuracy": [0.25]}}).save(tmp_path)
    lines = head_records(SimpleNamespace(specdec_pp_head=None, eesd_head=str(tmp_path)))
    assert len(lines) == 1 and lines[0].startswith("eesd head") and "trained 7 steps" in lines[0] and "25.0%" in lines[0]
