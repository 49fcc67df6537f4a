"""One real vLLM engine job in its own process, for tests (skips the test where vllm is not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["run_vllm_job"]


def run_vllm_job(tmp_path: str | Path, job: dict, timeout: float = 600) -> dict:
    """Run one vLLM engine job in a fresh process and return its JSON result.

    The job format is documented in :mod:`specplug.integrations.vllm.engine_runner`. The process gets
    VLLM_CPU_KVCACHE_SPACE=1, VLLM_ENABLE_V1_MULTIPROCESSING=0 (so one process is one engine) and a
    VLLM_CACHE_ROOT inside ``tmp_path``. Skips the test when vllm is not installed; fails it, with the
    end of the engine's output, when the engine writes no result or crashes.
    """
    import pytest

    pytest.importorskip("vllm")
    tmp = Path(tmp_path)
    tmp.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    job_path, out_path = tmp / f"job-{stamp}.json", tmp / f"out-{stamp}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               VLLM_CACHE_ROOT=str(tmp / "vllm-cache"))
    proc = subprocess.run([sys.executable, "-m", "specplug.integrations.vllm.engine_runner", str(job_path), str(out_path)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if not out_path.exists():
        pytest.fail(f"vLLM engine exited {proc.returncode} without a result:\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(out_path.read_text())
    if "crash" in result:
        pytest.fail(f"vLLM engine crashed:\n{result['crash'][-4000:]}")
    return result
