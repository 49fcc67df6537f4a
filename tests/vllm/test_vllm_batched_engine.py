"""The batched adapter path inside a real vLLM engine: lossless with rows reused across requests.

More prompts than ``max_num_seqs``, so vLLM reuses and condenses rows while suffix (stateful:
per-request state plus a global cache of finished outputs) and pld (stateless) draft through
``propose_batch``. Greedy outputs must equal plain decoding's, drafts must get accepted, and the
engine log must show that the batched path was the one taken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specplug.testing import repetitive_prompts, tiny_model_dir

pytestmark = pytest.mark.vllm


def run_engine(tmp: Path, job: dict, timeout: float = 300) -> dict:
    """One engine job in a fresh process; its JSON result plus the process log under ``"log"``."""
    pytest.importorskip("vllm")
    tmp.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    job_path, out_path, log_path = tmp / f"job-{stamp}.json", tmp / f"out-{stamp}.json", tmp / f"log-{stamp}.txt"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               VLLM_CACHE_ROOT=str(tmp / "vllm-cache"), VLLM_PLUGINS="specplug")
    with open(log_path, "w") as log:
        subprocess.run([sys.executable, "-m", "specplug.integrations.vllm.engine_runner", str(job_path), str(out_path)],
                       env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    if not out_path.exists():
        pytest.fail(f"engine exited without a result:\n{log_path.read_text()[-4000:]}")
    result = json.loads(out_path.read_text())
    if "crash" in result:
        pytest.fail(f"vLLM engine crashed:\n{result['crash'][-4000:]}")
    result["log"] = log_path.read_text()
    return result


def test_batched_suffix_and_pld_are_lossless_with_rows_reused(tmp_path):
    model = str(tiny_model_dir(tmp_path / "tiny", hidden=128))
    job = {"model": model, "prompts": repetitive_prompts(7, 40000, seed=3), "max_tokens": 24, "max_num_seqs": 3}
    base = run_engine(tmp_path, job)
    for method, path in (("suffix", "one propose_batch per step"), ("pld", "no row tracking (stateless)")):
        spec = run_engine(tmp_path, dict(job, speculative_config={"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}))
        assert path in spec["log"], f"{method} did not take the batched path"
        assert "raised in" not in spec["log"]
        assert spec["outputs"] == base["outputs"], method
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0, method
