"""The draft-length controller in specplug's vLLM custom_class adapter: the adapter alone (vLLM's
calling convention, no vLLM), then real engines whose greedy output must equal plain decoding's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specplug.integrations.vllm.adapter import SpecplugConfigError, adapter_class, vllm_schedule
from specplug.registry import get_registry
from specplug.testing.adapter import vllm_config
from specplug.testing.vllm import run_vllm_job

PLD_OPTIONS = {"min_ngram": 1, "max_ngram": 3}


def _adapter(k: int = 4, control=None, vllm_sched=None):
    config = vllm_config(k, PLD_OPTIONS, max_model_len=256)
    if control is not None:
        config.additional_config["specplug"]["control"] = control
    if vllm_sched is not None:
        config.speculative_config.num_speculative_tokens_per_batch_size = vllm_sched
    return adapter_class(get_registry().method("pld"))(config)


def _drive(adapter, batch: int, steps: int) -> list[list[list[int]]]:
    """Rows of a repeated phrase, one token committed per step (as after a rejected draft)."""
    phrase = [11, 12, 13, 14, 15, 16]
    tokens = np.zeros((8, 256), dtype=np.int32)
    lengths = np.zeros(8, dtype=np.int32)
    for row in range(batch):
        seq = (phrase * 20)[row:]
        tokens[row, : len(seq)] = seq
        lengths[row] = 12
    out = []
    for _ in range(steps):
        sampled = [[int(tokens[r, lengths[r] - 1])] if r < batch else [] for r in range(8)]
        out.append(adapter.propose(sampled, lengths, tokens))
        lengths[:batch] += 1
    return out


def test_schedule_zero_sends_nothing_and_k_follows_batch_size():
    drafts = _drive(_adapter(control={"mode": "schedule", "schedule": [[1, 2, 3], [3, 64, 0]]}), batch=4, steps=3)
    assert all(d == [] for step in drafts for d in step)
    drafts = _drive(_adapter(control={"mode": "schedule", "schedule": [[1, 2, 3], [3, 64, 0]]}), batch=2, steps=3)
    assert all(len(step[r]) == 3 for step in drafts for r in range(2))


def test_vllms_own_schedule_is_applied_to_custom_class_drafters():
    """vLLM passes no k to a custom_class drafter, so the adapter reads the schedule itself, gaps as vLLM fills them."""
    assert vllm_schedule([[1, 2, 3], [5, 64, 0]]) == [[1, 4, 3], [5, 64, 0]]
    drafts = _drive(_adapter(vllm_sched=[[1, 2, 3], [5, 64, 0]]), batch=4, steps=2)
    assert all(len(step[r]) == 3 for step in drafts for r in range(4))
    drafts = _drive(_adapter(vllm_sched=[[1, 2, 3], [5, 64, 0]]), batch=5, steps=2)
    assert all(d == [] for step in drafts for d in step)


def test_without_control_the_adapter_is_unchanged():
    assert _adapter().controller is None
    drafts = _drive(_adapter(), batch=2, steps=2)
    assert all(len(step[r]) == 4 for step in drafts for r in range(2))


@pytest.mark.parametrize(
    "control, words",
    [
        ({"mode": "schedule", "schedule": [[1, 4, 3], [6, 64, 0]]}, "gap"),
        ({"mode": "schedule", "schedule": [[1, 8, 3], [6, 64, 0]]}, "overlap"),
        ({"min_acceptance": 1.2}, "min_acceptance"),
        ({"mode": "sometimes"}, "mode"),
    ],
)
def test_bad_control_fails_when_the_engine_starts(control, words):
    with pytest.raises(SpecplugConfigError, match=words) as err:
        _adapter(control=control)
    assert 'additional_config["specplug"]["control"]' in str(err.value)


# -- real engines ------------------------------------------------------------------------------------


def _prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        phrase = rng.integers(100, 40000, size=int(rng.integers(3, 7))).tolist()
        out.append(phrase * 3 + phrase[:2])
    return out


@pytest.mark.vllm
def test_controller_in_vllm_is_lossless_at_every_k_and_logs_its_decisions(tiny_model, tmp_path):
    """pld under the controller, greedy output equal to plain decoding's: a schedule that gives every
    k from 4 down to 0 (the batch shrinks from 5 to 1 as requests of different lengths end; k = 0 at
    5 rows), then the adaptive controller (warm-up, probes and plans)."""
    pytest.importorskip("vllm")
    prompts = _prompts(5)
    sampling = [{"max_tokens": m} for m in (8, 16, 24, 32, 40)]
    base = run_vllm_job(tmp_path, {"model": tiny_model, "prompts": prompts, "sampling": sampling, "max_tokens": 40})
    every_k = [[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 64, 0]]
    outputs = {}
    for name, control in (("schedule", {"mode": "schedule", "schedule": every_k}), ("adaptive", {"mode": "adaptive", "warmup_steps": 4})):
        log = tmp_path / f"{name}.jsonl"
        outputs[name] = run_vllm_job(tmp_path, {
            "model": tiny_model, "prompts": prompts, "sampling": sampling, "max_tokens": 40,
            "speculative_config": {"model": "specplug.vllm.pld", "num_speculative_tokens": 4},
            "additional_config": {"specplug": {"options": PLD_OPTIONS, "control": {**control, "log_path": str(log)}}},
        })["outputs"]
        assert outputs[name] == base["outputs"], name
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert records and all(len(r["k"]) == r["batch"] and all(0 <= k <= 4 for k in r["k"]) for r in records)
        if name == "schedule":
            sent = {max(r["k"]) for r in records}
            assert all(max(r["k"]) <= (r["batch"] if r["batch"] < 5 else 0) for r in records)
            assert sent == {0, 1, 2, 3, 4}, f"k sent: {sorted(sent)}"
        else:
            assert {r["batch"] for r in records} >= {5, 1}
            assert sum(r["drafted"] for r in records[:4]) > 0  # the warm-up speculates
            assert any("step_ms" in r and "draft_ms" in r for r in records)  # the cost split is logged
