"""One vLLM engine configuration over a list of prompts, in its own process (``specplug bench --engine vllm``).

Usage: ``python -m specplug.bench.vllm_worker JOB.json OUT.jsonl``. The job names the model folder,
the speculative config (``null`` for plain decoding), sampling settings and tokenized prompts. Each
prompt is generated alone (batch 1). Its draft and acceptance counts are the differences of vLLM's
spec-decode counters (``LLM.get_metrics()``) around the call. One JSON line per prompt goes to
stdout (the parent reads progress from it) and to OUT.jsonl.

With ``"batch": true`` the job's prompts are generated in one ``generate`` call instead (vLLM
schedules them together, up to ``max_num_seqs``): one line per prompt with its output, then one
``{"batch": {...}}`` line with the run's totals (new tokens, seconds, spec-decode counters), since
counters cannot be split by prompt inside one call. ``"max_model_len"`` and ``"max_num_seqs"`` in
the job override the defaults; ``"single_first": N`` first generates the first N prompts one at a
time as above (batch 1), in the same engine.

The parent sets ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, ``VLLM_CPU_KVCACHE_SPACE`` and a private
``VLLM_CACHE_ROOT``. This is the only bench module that imports vllm.
"""

from __future__ import annotations

import json
import sys
import time


def main(job_path: str, out_path: str) -> int:
    import vllm
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from specplug.integrations.vllm.metrics import spec_decode_counters

    job = json.loads(open(job_path, encoding="utf-8").read())
    kwargs = dict(model=job["model"], dtype="float32", enforce_eager=True, disable_log_stats=False, seed=job["seed"])
    try:  # a KV cache for the model's whole context would not fit VLLM_CPU_KVCACHE_SPACE; 4096 holds any Spec-Bench prompt
        config = json.loads(open(f"{job['model']}/config.json", encoding="utf-8").read())
        kwargs["max_model_len"] = min(4096, int(config.get("max_position_embeddings") or 4096))
    except (OSError, ValueError):
        pass
    for key in ("max_model_len", "max_num_seqs"):
        if job.get(key):
            kwargs[key] = int(job[key])
    if job.get("speculative_config"):
        kwargs["speculative_config"] = job["speculative_config"]
    if job.get("additional_config"):
        kwargs["additional_config"] = job["additional_config"]
    llm = LLM(**kwargs)
    params = SamplingParams(temperature=job["temperature"], max_tokens=job["max_new_tokens"], seed=job["seed"])
    print(json.dumps({"versions": {"vllm_version": vllm.__version__}}), flush=True)
    # warm-up outside the figures
    llm.generate([TokensPrompt(prompt_token_ids=job["prompts"][0]["token_ids"])], SamplingParams(max_tokens=2), use_tqdm=False)
    single = job["prompts"][: int(job.get("single_first") or 0)] if job.get("batch") else job["prompts"]
    with open(out_path, "a", encoding="utf-8") as out:
        for prompt in single:
            before = spec_decode_counters(llm)
            start = time.perf_counter()
            output = llm.generate([TokensPrompt(prompt_token_ids=prompt["token_ids"])], params, use_tqdm=False)[0]
            seconds = time.perf_counter() - start
            after = spec_decode_counters(llm)
            tokens = list(output.outputs[0].token_ids)
            accepted = after["vllm:spec_decode_num_accepted_tokens"] - before["vllm:spec_decode_num_accepted_tokens"]
            row = {
                "prompt_id": prompt["id"],
                "category": prompt["category"],
                "new_tokens": len(tokens),
                # every target forward emits its accepted draft tokens plus one token of its own
                "steps": len(tokens) - accepted,
                "drafted": after["vllm:spec_decode_num_draft_tokens"] - before["vllm:spec_decode_num_draft_tokens"],
                "accepted": accepted,
                "seconds": seconds,
                "output_ids": tokens,
            }
            line = json.dumps(row)
            out.write(line + "\n")
            out.flush()
            print(line, flush=True)
    if job.get("batch"):
        return _batch(llm, params, job, out_path)
    return 0


def _batch(llm, params, job: dict, out_path: str) -> int:
    from vllm.inputs import TokensPrompt

    from specplug.integrations.vllm.metrics import spec_decode_counters

    before = spec_decode_counters(llm)
    start = time.perf_counter()
    outputs = llm.generate([TokensPrompt(prompt_token_ids=p["token_ids"]) for p in job["prompts"]], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    after = spec_decode_counters(llm)
    new_tokens = 0
    with open(out_path, "a", encoding="utf-8") as out:
        for prompt, output in zip(job["prompts"], outputs):
            tokens = list(output.outputs[0].token_ids)
            new_tokens += len(tokens)
            line = json.dumps({"prompt_id": prompt["id"], "category": prompt["category"], "output_ids": tokens, "in_batch": True})
            out.write(line + "\n")
            print(line, flush=True)
        totals = {name.removeprefix("vllm:spec_decode_"): after[name] - before[name] for name in after}
        line = json.dumps({"batch": {"prompts": len(outputs), "new_tokens": new_tokens, "seconds": seconds, **totals}})
        out.write(line + "\n")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m specplug.bench.vllm_worker JOB.json OUT.jsonl")
    sys.exit(main(sys.argv[1], sys.argv[2]))
