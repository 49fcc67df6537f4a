"""The adaptive_vllm suite kind without vLLM: the controller's log summarised into the cost split
(step time with and without drafts, the adapter's drafting and deciding time) and rendered."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from specplug.bench.kinds.adaptive_vllm import _decisions, render
from specplug.kit.k_control import KController, RowStep


def test_decision_log_gives_why_and_the_cost_split(tmp_path):
    log = tmp_path / "pld.jsonl"
    ctl = KController({"mode": "adaptive", "warmup_steps": 2, "log_path": str(log)}, 3)
    truth = list(range(100, 400))
    lengths = {0: 5, 1: 7}
    for step in range(12):
        rows = [0] if step < 6 else [0, 1]  # batch 1, then a second row
        ks = ctl.choose([RowStep(r, np.array(truth[: lengths[r]]), truth[lengths[r] : lengths[r] + 3]) for r in rows], draft_seconds=0.001)
        ctl.record_step_time(len(rows) + sum(ks), 0.020 + 0.001 * sum(ks))
        for r, k in zip(rows, ks):
            lengths[r] += k + 1  # the draft is always right here
    ctl.flush()
    summary = _decisions(log)
    assert set(summary) == {"1", "2-8"}
    one = summary["1"]
    assert one["steps"] == 6 and set(one["why"]) <= {"warmup", "probe", "plan"} and one["why"].get("warmup") == 2
    assert one["draft_ms"] == 1.0 and one["control_ms"] > 0
    assert one["spec_step_ms"] is not None and one["spec_step_ms"] > 20.0
    lines = render(SimpleNamespace(extra={"run": {}, "batch": {}, "decisions": {"pld@control": summary}, "goals": []}))
    table = [line for line in lines if line.startswith("| pld@control")]
    assert len(table) == 2 and "warmup 2" in table[0]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all("step_ms" in r for r in records)  # each step's own time, in its own record


def _plain_run(seconds: list[float], batch_seconds: float) -> dict:
    rows = [{"prompt_id": f"p{i}", "category": "c", "seconds": s, "new_tokens": 10, "accepted": 0, "drafted": 0,
             "output_ids": [i, 1, 2]} for i, s in enumerate(seconds)]
    return {"batch1": rows, "batch": {"seconds": batch_seconds, "drafted": 0, "accepted": 0, "outputs": [[0, 1], [1, 1]]}}


def test_an_engines_passes_merge_into_their_mean_and_report_drift():
    from specplug.bench.kinds.adaptive_vllm import merge_passes

    merged, drift = merge_passes([_plain_run([1.0, 3.0], 4.0), _plain_run([2.0, 1.0], 2.0)])
    assert [r["seconds"] for r in merged["batch1"]] == [1.5, 2.0]
    assert merged["batch"]["seconds"] == 3.0
    assert abs(drift["batch1"] - 4.0 / 3.0) < 1e-12  # the second run was faster: tokens/s rose by 4/3
    assert drift["batch"] == 2.0 and drift["same_outputs"]
    other = _plain_run([2.0, 1.0], 2.0)
    other["batch1"][0]["output_ids"] = [9]
    assert not merge_passes([_plain_run([1.0, 3.0], 4.0), other])[1]["same_outputs"]
    assert merge_passes([_plain_run([1.0], 1.0)]) == (_plain_run([1.0], 1.0), None)


def test_the_eagle3_heads_training_record_is_read_through_head_metadata(tmp_path):
    from specplug.bench.kinds.adaptive_vllm import _head_quality
    from specplug.kit.heads import HeadMetadata

    HeadMetadata(method="eagle3", target={}, hidden_state_layers=[2], draft_vocab_size=8,
                 training={"steps": 11, "seconds": 5, "held_out": {"accuracy": [0.0]}}).save(tmp_path)
    assert "trained 11 steps" in _head_quality(tmp_path)["training"] and "0.0%" in _head_quality(tmp_path)["training"]
    assert "no readable training record" in _head_quality(tmp_path / "missing")["training"]


def test_a_goal_closer_to_its_threshold_than_the_machine_drifted_is_undecided():
    from specplug.bench.kinds.adaptive_vllm import _goals

    def engine(batch_speedup, one_speedup):
        return {"batch": {"speedup": batch_speedup}, "categories": {"overall": {"speedup": one_speedup}}}

    summary = {"plain": engine(1.0, 1.0), "pld@fixed": engine(0.7, 1.0), "pld@control": engine(1.05, 0.97)}
    steady = {"plain": {"batch": 1.01, "batch1": 1.0}, "pld@control": {"batch": 0.99, "batch1": 1.01},
              "pld@fixed": {"batch": 1.0, "batch1": 0.99}}
    whole, one = _goals(summary, ["pld"], steady)
    assert whole["met"] is True and one["met"] is True and "verdict" not in whole
    drifting = {**steady, "plain": {"batch": 1.2, "batch1": 1.0}}  # plain's second run 20% faster
    whole, one = _goals(summary, ["pld"], drifting)
    assert whole["met"] is None and whole["verdict"] == "undecided" and "20%" in whole["figure"]
    assert one["met"] is True  # batch 1 compares two speculative engines: plain's drift cancels
    far = {**summary, "pld@control": engine(0.5, 0.97)}
    assert _goals(far, ["pld"], drifting)[0]["met"] is False  # 0.5x is further from 0.98x than 20%
