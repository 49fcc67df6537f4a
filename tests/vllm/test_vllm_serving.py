"""The OpenAI server under load with cancellations, level 1 (pld) and level 2 (suffix, recycling).

32 concurrent streaming requests mixing the traffic each family of methods is built for (prompts
that copy themselves, prompts several users send, plain chat, longer outputs), a quarter of them
closed by the client mid-stream. Afterwards: every finished stream equals vLLM without speculation,
every cancelled one is a prefix of it, no request is left running, and at level 2 specplug's state
trace shows the proposer holds nothing for requests that are gone. One server per test, loopback,
stopped by PID.
"""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest

from specplug.integrations.vllm.loadgen import read_trace, start_server, stream_completion
from specplug.testing.vllm import run_vllm_job

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

NUM_REQUESTS = 32


def mixed_traffic(seed: int = 3) -> list[dict]:
    """32 requests: ``prompt``, ``max_tokens``, ``cancel_after`` (chunks; None = read to the end)."""
    rng = np.random.default_rng(seed)
    requests = []
    shared = [rng.integers(100, 40000, size=12).tolist() for _ in range(2)]
    for i in range(NUM_REQUESTS):
        kind = i % 4
        if kind == 0:  # copies itself (PLD, suffix): a phrase said three times
            phrase = rng.integers(100, 40000, size=int(rng.integers(3, 7))).tolist()
            prompt, max_tokens = phrase * 3 + phrase[:2], 24
        elif kind == 1:  # the same prompt from several users (suffix's global cache, recycling's matrix)
            prompt, max_tokens = shared[i % 2], 24
        elif kind == 2:  # short chat turn
            prompt, max_tokens = rng.integers(100, 40000, size=int(rng.integers(4, 20))).tolist(), 8
        else:  # a longer answer
            prompt, max_tokens = rng.integers(100, 40000, size=int(rng.integers(8, 30))).tolist(), 40
        requests.append({"prompt": prompt, "max_tokens": max_tokens, "cancel_after": None})
    for i in rng.choice(NUM_REQUESTS, size=NUM_REQUESTS // 4, replace=False).tolist():
        requests[i]["cancel_after"] = int(rng.integers(1, 3))
    return requests


TRAFFIC = mixed_traffic()
FLUSH = {"prompt": [5, 6, 7, 8, 5, 6, 7, 8, 5, 6], "max_tokens": 4}


@pytest.fixture(scope="module")
def baseline(tiny_model, tmp_path_factory) -> list[list[int]]:
    """Greedy outputs of vLLM without speculation (offline engine), traffic then the flush request."""
    requests = TRAFFIC + [FLUSH]
    job = {"model": tiny_model, "prompts": [r["prompt"] for r in requests], "max_num_seqs": 32,
           "sampling": [{"max_tokens": r["max_tokens"]} for r in requests]}
    return run_vllm_job(tmp_path_factory.mktemp("base"), job)["outputs"]


def serve_load(server, refused: dict | None = None) -> tuple[list, object]:
    """The traffic, all at once; ``refused``: one more request's extra parameters, sent among them."""
    with cf.ThreadPoolExecutor(max_workers=NUM_REQUESTS + 1) as pool:
        futures = [pool.submit(stream_completion, server, r["prompt"], r["max_tokens"], r["cancel_after"]) for r in TRAFFIC]
        odd = pool.submit(stream_completion, server, FLUSH["prompt"], 8, **refused) if refused else None
        return [f.result(timeout=300) for f in futures], (odd.result(timeout=300) if odd else None)


def check_outputs(server, completions, baseline) -> None:
    for request, done, expected in zip(TRAFFIC, completions, baseline):
        assert done.error is None, done.error
        if request["cancel_after"] is None:
            assert done.finish_reason == "length" and done.token_ids == expected  # lost nothing, changed nothing
        else:
            assert done.token_ids == expected[: len(done.token_ids)]  # what was streamed before the cancel
    assert sum(c.cancelled for c in completions) >= NUM_REQUESTS // 8  # the short ones may finish first
    # the server still serves, and nothing is left running or waiting
    flush = stream_completion(server, FLUSH["prompt"], FLUSH["max_tokens"])
    assert flush.token_ids == baseline[-1]
    counters = server.counters()
    assert counters["vllm:num_requests_running"] == 0 and counters["vllm:num_requests_waiting"] == 0
    assert counters["vllm:spec_decode_num_accepted_tokens_total"] > 0


def test_level1_pld_server_with_cancellations(tiny_model, baseline, tmp_path):
    config = {"model": "specplug.vllm.pld", "num_speculative_tokens": 4}
    with start_server(tiny_model, tmp_path, config, {"specplug": {"options": {"min_ngram": 1, "max_ngram": 3}}}) as server:
        completions, _ = serve_load(server)
        check_outputs(server, completions, baseline)
        assert "raised in" not in server.log()


@pytest.mark.parametrize("method,verifier", [("suffix", "speculative_sampling"), ("recycling", None)])
def test_level2_server_with_cancellations_leaves_no_request_state(method, verifier, tiny_model, baseline, tmp_path):
    """suffix also runs with a specplug verifier in place of vLLM's rejection sampler: a request with
    logprobs among the load is refused with a clear error, and the others are served."""
    pytest.importorskip(f"specplug_{method}")
    trace = tmp_path / "trace"
    env = {"SPECPLUG_VLLM_LEVEL2": "1", "SPECPLUG_VLLM_TRACE": str(trace)}
    config = {"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}
    extra = {"specplug": {"verifier": verifier}} if verifier else None
    with start_server(tiny_model, tmp_path, config, extra, env=env) as server:
        completions, refused = serve_load(server, {"logprobs": 1} if verifier else None)
        if verifier:
            assert refused.error and "logprobs are not supported" in refused.error  # HTTP 400 or an error event
            assert f"specplug verifier {verifier!r} replaces" in server.log()
        check_outputs(server, completions, baseline)
        assert "specplug level 2 active" in server.log() and "raised in" not in server.log()
    states = read_trace(trace, "state")
    assert states, "the state trace is empty"
    assert all(s["num_held"] == 0 for s in states), [s["held"] for s in states if s["num_held"]]
    last = states[-1]  # written at the flush request's first step, after vLLM delivered the last finishes
    assert last["live"] == 0 and last["started"] == last["finished"] >= NUM_REQUESTS * 3 // 4
