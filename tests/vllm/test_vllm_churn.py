"""Memory under churn: a few hundred short requests through the server with a stateful level-2 method.

suffix (per-request histories plus a global cache of earlier outputs) and recycling (an adjacency
matrix shared by all requests plus a per-request root). specplug's state trace
(``SPECPLUG_VLLM_TRACE``) reports, at every step where requests ended, the proposer's footprint
(bytes of its object graph) and any finished request it still references. The footprint must
plateau (suffix's cache is capped small here so the cap is reached early), no finished request may
be referenced, and nothing is live once the requests are gone. ``benchmarks/suites/vllm_churn.toml`` runs the
same with 2,000 requests and the default options.
"""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest

from specplug.integrations.vllm.loadgen import read_trace, start_server, stream_completion

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

NUM_REQUESTS = 300
CONCURRENCY = 16
OPTIONS = {"suffix": {"max_cached_requests": 32, "max_cached_tokens": 4096}, "recycling": {}}


def short_requests(n: int, seed: int = 0) -> list[list[int]]:
    """Short prompts; a third of them repeat one of a few popular prompts."""
    rng = np.random.default_rng(seed)
    popular = [rng.integers(100, 40000, size=8).tolist() for _ in range(4)]
    return [popular[i % 4] if i % 3 == 0 else rng.integers(100, 40000, size=int(rng.integers(4, 12))).tolist()
            for i in range(n)]


@pytest.mark.parametrize("method", ["suffix", "recycling"])
def test_churn_keeps_proposer_memory_bounded_and_no_request_state(method, tiny_model, tmp_path):
    pytest.importorskip(f"specplug_{method}")
    trace = tmp_path / "trace"
    env = {"SPECPLUG_VLLM_LEVEL2": "1", "SPECPLUG_VLLM_TRACE": str(trace)}
    config = {"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}
    prompts = short_requests(NUM_REQUESTS)
    with start_server(tiny_model, tmp_path, config, {"specplug": {"options": OPTIONS[method]}}, env=env,
                      max_num_seqs=CONCURRENCY) as server:
        with cf.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            done = list(pool.map(lambda p: stream_completion(server, p, 6), prompts, timeout=240))
        assert all(d.error is None and d.finish_reason == "length" and len(d.token_ids) == 6 for d in done)
        stream_completion(server, prompts[0], 2)  # its first step delivers the last finishes to the runner
        counters = server.counters()
        assert counters["vllm:num_requests_running"] == 0
        assert "raised in" not in server.log()
    states = read_trace(trace, "state")
    assert all(s["num_held"] == 0 for s in states), [s["held"] for s in states if s["num_held"]]
    last = states[-1]
    assert last["live"] == 0 and last["started"] == last["finished"] >= NUM_REQUESTS  # + the request sent after
    sizes = [s["proposer_bytes"] for s in states]
    quarter = len(sizes) // 4
    early, late = max(sizes[quarter : 2 * quarter]), max(sizes[2 * quarter :])
    assert late <= early * 1.1 + 64 * 1024, f"proposer footprint grew from {early} to {late} bytes"
    print(f"{method}: {len(states)} state records, proposer bytes first {sizes[0]} early max {early} "
          f"late max {late} last {sizes[-1]}; rss first {states[0]['rss_bytes']} last {last['rss_bytes']}")
