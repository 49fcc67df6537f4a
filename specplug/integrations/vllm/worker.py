"""One real vLLM engine in its own process, driven by a JSON job; what it did goes to stdout as records.

Usage: ``python -m specplug.integrations.vllm.worker JOB.json``. Run it through
:mod:`specplug.integrations.vllm.jobs`, which sets the environment (one engine per process:
``VLLM_ENABLE_V1_MULTIPROCESSING=0``, a small KV cache, the session's vLLM cache folder) and reads
the records back. Each record is one stdout line, :data:`RECORD` followed by a JSON object; every
other line (vLLM's log among them) is log.

Job keys, every mode:

- ``model``; ``speculative_config`` (null: plain decoding) and ``additional_config``;
- ``max_model_len``, ``max_num_seqs``, ``seed`` (default 0); ``tensor_parallel_size`` (workers then
  run in child processes);
- ``extra_plugins``: test plugin modules to register (importable from the job's PYTHONPATH);
  ``level2``: apply specplug's level 2 first (the caller sets ``SPECPLUG_VLLM_LEVEL2=1``).

Modes (``mode``):

- ``"generate"`` (default; tests, training data): ``prompts`` (strings or token id lists) in one
  ``generate`` call, greedy with ``max_tokens`` (32) and ``ignore_eos`` (true), ``sampling`` (per
  prompt, SamplingParams keywords over those) optional; then ``then_prompts``, one request each (their
  outputs are not returned). One record ``{"outputs": [[ids]...], "metrics": {counter: total}}``.
  ``max_model_len`` defaults to 512, ``max_num_seqs`` to 8.
- ``"errors"``: ``configs``, a list of ``{"speculative_config", "additional_config"}``, each engine
  expected to fail at start; one record ``{"errors": [message or null, ...]}``.
- ``"timed"`` (benchmarks): ``prompts`` as ``{"id", "category", "token_ids"}``, ``max_new_tokens``,
  ``temperature``. A ``{"versions": {...}}`` record, a warm-up outside the figures, then each prompt
  alone (batch 1): one record per prompt with ``prompt_id, category, new_tokens, steps, drafted,
  accepted, seconds, output_ids``, its counts the differences of vLLM's spec-decode counters around
  the call. With ``"batch": true`` the prompts run in one ``generate`` call instead (``"single_first":
  N`` first runs the first N alone as above, in the same engine): one ``{"prompt_id", "category",
  "output_ids", "in_batch": true}`` record per prompt, then ``{"batch": {prompts, new_tokens, seconds,
  num_drafts, num_draft_tokens, num_accepted_tokens}}`` (counters cannot be split by prompt inside one
  call). ``max_model_len`` defaults to the model's context, at most 4096 (a longer KV cache would not
  fit ``VLLM_CPU_KVCACHE_SPACE``); ``max_num_seqs`` to vLLM's default.

When anything raises, the last record is ``{"crash": traceback}`` and the process exits with 1.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

__all__ = ["RECORD", "main"]

RECORD = "specplug-job-record: "
"""The prefix of a record line on the worker's stdout."""


def emit(record: dict[str, Any]) -> None:
    print(RECORD + json.dumps(record), flush=True)


def make_llm(job: dict, speculative_config: dict | None, additional_config: dict | None):
    from vllm import LLM

    kwargs: dict[str, Any] = dict(model=job["model"], dtype="float32", enforce_eager=True,
                                  seed=job.get("seed", 0), disable_log_stats=False)
    if job.get("mode") == "timed":
        try:
            config = json.loads(open(f"{job['model']}/config.json", encoding="utf-8").read())
            kwargs["max_model_len"] = min(4096, int(config.get("max_position_embeddings") or 4096))
        except (OSError, ValueError):
            pass
    else:
        kwargs.update(max_model_len=512, max_num_seqs=8)
    for key in ("max_model_len", "max_num_seqs"):
        if job.get(key):
            kwargs[key] = int(job[key])
    if job.get("tensor_parallel_size", 1) > 1:
        kwargs.update(tensor_parallel_size=job["tensor_parallel_size"], distributed_executor_backend="mp")
    if speculative_config:
        kwargs["speculative_config"] = speculative_config
    if additional_config:
        kwargs["additional_config"] = additional_config
    return LLM(**kwargs)


def generate(job: dict) -> None:
    from vllm import SamplingParams

    from specplug.integrations.vllm.metrics import spec_decode_counters

    llm = make_llm(job, job.get("speculative_config"), job.get("additional_config"))
    defaults = dict(temperature=0.0, max_tokens=job.get("max_tokens", 32), ignore_eos=job.get("ignore_eos", True))
    params = SamplingParams(**defaults)
    prompts = [{"prompt_token_ids": p} if isinstance(p, list) else p for p in job["prompts"]]
    if job.get("sampling"):  # per prompt: SamplingParams keywords over the defaults
        per_prompt = [SamplingParams(**{**defaults, **extra}) for extra in job["sampling"]]
        results = llm.generate(prompts, per_prompt, use_tqdm=False)
    else:
        results = llm.generate(prompts, params, use_tqdm=False)
    outputs = [list(r.outputs[0].token_ids) for r in results]
    for prompt in job.get("then_prompts", []):  # later rounds, one request each
        llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)
    emit({"outputs": outputs, "metrics": spec_decode_counters(llm)})


def errors(job: dict) -> None:
    messages = []
    for config in job["configs"]:
        try:
            llm = make_llm(job, config["speculative_config"], config.get("additional_config"))
        except BaseException:  # noqa: BLE001 - we report whatever vLLM raised, with its causes
            messages.append(traceback.format_exc())
        else:
            del llm
            messages.append(None)
    emit({"errors": messages})


def timed(job: dict) -> None:
    import vllm
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from specplug.integrations.vllm.metrics import spec_decode_counters

    llm = make_llm(job, job.get("speculative_config"), job.get("additional_config"))
    params = SamplingParams(temperature=job["temperature"], max_tokens=job["max_new_tokens"], seed=job.get("seed", 0))
    emit({"versions": {"vllm_version": vllm.__version__}})
    # warm-up outside the figures
    llm.generate([TokensPrompt(prompt_token_ids=job["prompts"][0]["token_ids"])], SamplingParams(max_tokens=2), use_tqdm=False)
    single = job["prompts"][: int(job.get("single_first") or 0)] if job.get("batch") else job["prompts"]
    for prompt in single:
        before = spec_decode_counters(llm)
        start = time.perf_counter()
        output = llm.generate([TokensPrompt(prompt_token_ids=prompt["token_ids"])], params, use_tqdm=False)[0]
        seconds = time.perf_counter() - start
        after = spec_decode_counters(llm)
        tokens = list(output.outputs[0].token_ids)
        accepted = after["vllm:spec_decode_num_accepted_tokens"] - before["vllm:spec_decode_num_accepted_tokens"]
        emit({
            "prompt_id": prompt["id"],
            "category": prompt["category"],
            "new_tokens": len(tokens),
            # every target forward emits its accepted draft tokens plus one token of its own
            "steps": len(tokens) - accepted,
            "drafted": after["vllm:spec_decode_num_draft_tokens"] - before["vllm:spec_decode_num_draft_tokens"],
            "accepted": accepted,
            "seconds": seconds,
            "output_ids": tokens,
        })
    if not job.get("batch"):
        return
    before = spec_decode_counters(llm)
    start = time.perf_counter()
    outputs = llm.generate([TokensPrompt(prompt_token_ids=p["token_ids"]) for p in job["prompts"]], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    after = spec_decode_counters(llm)
    new_tokens = 0
    for prompt, output in zip(job["prompts"], outputs):
        tokens = list(output.outputs[0].token_ids)
        new_tokens += len(tokens)
        emit({"prompt_id": prompt["id"], "category": prompt["category"], "output_ids": tokens, "in_batch": True})
    totals = {name.removeprefix("vllm:spec_decode_"): after[name] - before[name] for name in after}
    emit({"batch": {"prompts": len(outputs), "new_tokens": new_tokens, "seconds": seconds, **totals}})


MODES = {"generate": generate, "errors": errors, "timed": timed}


def use_extra_plugins(modules: list[str]) -> None:
    """Register test plugins: the process-wide registry is rebuilt with them added, on first use.

    Lazily, because building the registry imports the installed plugins (pld imports numba), and
    vllm-cpu 0.32 fails in worker start (triton kernel rebinding scans every module and trips on
    llvmlite's objects) when llvmlite is imported before the engine starts.
    """
    import functools
    import importlib

    import specplug.registry as registry

    @functools.cache
    def built():
        return registry.build_registry(extra_plugins=[importlib.import_module(m) for m in modules])

    registry.get_registry = built


def main(job_path: str) -> int:
    try:
        job = json.loads(open(job_path, encoding="utf-8").read())
        mode = MODES[job.get("mode", "generate")]
        if job.get("extra_plugins"):
            use_extra_plugins(job["extra_plugins"])
        if job.get("level2"):
            # What vLLM's general-plugin loader does with specplug's entry point, done directly so the
            # job does not depend on the entry point being installed (SPECPLUG_VLLM_LEVEL2=1 is set by the caller).
            from specplug.integrations.vllm.plugin import register

            if not (register() and register()):  # the second call must be a harmless no-op
                raise RuntimeError("specplug level 2 did not activate")
        mode(job)
    except BaseException:  # noqa: BLE001 - the caller gets the traceback as a record
        emit({"crash": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m specplug.integrations.vllm.worker JOB.json")
    sys.exit(main(sys.argv[1]))
