"""Real vLLM engine jobs for tests: skip where vllm is not installed, fail with the engine's own words.

Every job runs in a fresh process through :mod:`specplug.integrations.vllm.jobs` (the job format is
in :mod:`specplug.integrations.vllm.worker`), so a test session shares what the runner shares: one
vLLM cache folder, and the outputs of plain decoding (a plain baseline that another test already
ran on the same model and prompts is not run again). :func:`session_tiny_model_dir` gives the tests
of one session the same tiny model folder, which is what lets their baselines be shared.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

__all__ = ["run_vllm_job", "session_tiny_model_dir"]


def run_vllm_job(tmp_path: str | Path, job: dict, timeout: float = 600, env: dict[str, str] | None = None) -> dict:
    """Run one vLLM engine job in a fresh process and return its result (``"log"``: the engine's output).

    ``env`` is added to the engine's environment. The log is also written into ``tmp_path``. Skips the
    test when vllm is not installed; fails it, with the engine's traceback or the end of its log,
    when the engine crashes or writes no result.
    """
    import pytest

    pytest.importorskip("vllm")
    from specplug.integrations.vllm.jobs import VllmJobError, job_result

    tmp = Path(tmp_path)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        return job_result(job, env=env, timeout=timeout, log_path=tmp / f"vllm-{time.monotonic_ns()}.log")
    except VllmJobError as err:
        pytest.fail(str(err))


def session_tiny_model_dir(tmp_path_factory: Any, hidden: int = 128, num_layers: int = 2, seed: int = 0) -> str:
    """The session's tiny random Llama with SmolLM2's tokenizer (see :func:`specplug.testing.tiny_model_dir`),
    built on first use under pytest's session folder and shared by every test that asks for the same shape.

    ``hidden=128`` (4 heads of 32) is the smallest vLLM's CPU attention takes; tensor parallelism
    needs 256. Pass the ``tmp_path_factory`` fixture.
    """
    from specplug.testing.models import tiny_model_dir

    path = Path(tmp_path_factory.getbasetemp()) / f"specplug-tiny-model-h{hidden}-l{num_layers}-s{seed}"
    done = path / ".complete"
    if not done.exists():
        tiny_model_dir(path, seed=seed, num_layers=num_layers, hidden=hidden)
        done.touch()
    return str(path)
