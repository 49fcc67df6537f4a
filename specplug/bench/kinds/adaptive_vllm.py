"""Speculation that never costs throughput, in vLLM (CPU): fixed k vs vLLM's schedule vs specplug's controller.

SmolLM2-135M-Instruct in float32, greedy, Spec-Bench prompts with the chat template. For every
method (``pld`` and ``suffix`` through specplug's custom_class adapter, ``eagle3`` as vLLM's native
method loading a head from specplug's cache) and every draft-length policy, one engine runs:

1. the first ``batch1_per_category`` prompt(s) of each category alone (batch 1), then
2. the whole set (``per_category`` prompts per category) in one ``generate`` call (whole-batch throughput).

Policies: ``fixed`` (``num_speculative_tokens = k`` every step), ``vllm_schedule`` (vLLM's
``num_speculative_tokens_per_batch_size``; for custom_class methods vLLM passes no ``k`` to the
drafter, so specplug's adapter applies the schedule itself) and ``control`` (specplug's
:class:`~specplug.kit.k_control.KController` in the adapter; it logs each decision, summarised in
the document). vLLM's native methods (eagle3) do not go through the adapter: the controller does
not apply to them, vLLM's schedule does. Plain decoding runs in the same suite run.

Engines run one after another, and a 2-core machine's speed drifts by tens of percent over minutes
(measured: plain decoding 20% slower at the end of a 6-minute run than at its start), which would
show up as speedup or slowdown of whichever engine ran in the faster minutes. So with ``repeats = 2``
every engine runs twice, the second pass in reverse order (plain, A, B, ..., B, A, plain), which
cancels a drift linear in time; each figure uses the mean of its two runs, and the document prints
every engine's second-run-over-first ratio so a reader sees how steady the machine was.

Figures: batch-1 speedup and MAT over plain decoding (same prompts, same run), whole-batch
throughput over plain's, and identity of every output with plain decoding's. Goals (issue 22): with
the controller, whole-batch throughput >= 0.98x plain for every method, and batch-1 speedup within
5% of the fixed k's.

Suite kind ``adaptive_vllm`` (``benchmarks/suites/adaptive_vllm.toml``), a core kind: it builds
methods by id through vLLM's config and needs no plugin import.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND"]

POLICIES = ("fixed", "vllm_schedule", "control")
METHODS = ("pld", "suffix", "eagle3")
CUSTOM_CLASS = {"pld": {"min_ngram": 1, "max_ngram": 3}, "suffix": {}}

DEFAULTS = {
    "model": "smollm2-135m",
    "per_category": 2,
    "batch1_per_category": 1,
    "max_new_tokens": 64,
    "k": 5,
    "methods": list(METHODS),
    "policies": list(POLICIES),
    "vllm_schedule": [[1, 4, 5], [5, 1024, 0]],
    "control": {"mode": "adaptive"},
    "eagle3_head": None,
    "cpu_bind": "nobind",
    "repeats": 2,
    "stem": "adaptive_vllm",
}


def merge_passes(passes: list[dict]) -> tuple[dict, dict | None]:
    """One engine's runs (one per pass) as one: each prompt's batch-1 seconds and the whole batch's
    seconds are the mean over the passes; the outputs, MAT and drafts are the first pass's (greedy:
    the passes must agree, and ``same_outputs`` says whether they did). With two passes, also the
    second's tokens/s over the first's at batch 1 and in the batch (1.0: no drift between them)."""
    first = passes[0]
    if len(passes) == 1:
        return first, None
    by_pass = [{r["prompt_id"]: r for r in p["batch1"]} for p in passes]
    if any(set(b) != set(by_pass[0]) for b in by_pass):
        raise ValueError("an engine's passes timed different prompts; every pass must run the same job")
    batch1 = [{**r, "seconds": sum(b[pid]["seconds"] for b in by_pass) / len(passes)} for pid, r in by_pass[0].items()]
    batch = {**first["batch"], "seconds": sum(p["batch"]["seconds"] for p in passes) / len(passes)}
    one = [sum(r["seconds"] for r in p["batch1"]) for p in passes]
    drift = {"batch1": one[0] / one[-1], "batch": first["batch"]["seconds"] / passes[-1]["batch"]["seconds"],
             "same_outputs": all(b[pid]["output_ids"] == by_pass[0][pid]["output_ids"] for b in by_pass for pid in b)
             and all(p["batch"]["outputs"] == first["batch"]["outputs"] for p in passes)}
    return {**first, "batch1": batch1, "batch": batch}, drift


def _eagle3_head(args, tmp: Path) -> dict:
    """The trained EAGLE-3 head in specplug's cache (or ``eagle3_head``), else a random one, labelled so."""
    from specplug.kit.heads import default_head_dir, save_random_head, target_fingerprint
    from specplug.models import load_model

    model, _ = load_model(args.model)
    folder = Path(args.eagle3_head) if args.eagle3_head else default_head_dir(target_fingerprint(model), "eagle3")
    if folder.exists():
        return {"folder": str(folder), "trained": True, **_head_quality(folder)}
    folder = save_random_head("eagle3", model, tmp / "random_eagle3", draft_vocab=8192)
    return {"folder": str(folder), "trained": False}


def _head_quality(folder: Path) -> dict:
    """The trained head's training record in one line (a head trained for minutes on a CPU can be as
    good as a random one, and the page must say which it used)."""
    from specplug.kit.heads import HeadMetadata

    return {"training": HeadMetadata.describe(folder)}


def _configs(args, head: dict | None, log_dir: Path) -> list[tuple[str, str, dict | None, dict | None]]:
    """``(name, method, speculative_config, additional_config)`` per engine; plain first."""
    out: list[tuple[str, str, dict | None, dict | None]] = [("plain", "plain", None, None)]
    for method in args.methods:
        for policy in args.policies:
            if method in CUSTOM_CLASS:
                spec = {"model": f"specplug.vllm.{method}", "num_speculative_tokens": args.k}
                section: dict[str, Any] = {"options": CUSTOM_CLASS[method]}
            elif method == "eagle3":
                if head is None:
                    continue
                spec = {"method": "eagle3", "model": head["folder"], "num_speculative_tokens": args.k}
                section = {}
                if policy == "control":  # vLLM's native methods do not go through specplug's adapter
                    continue
            else:
                raise SystemExit(f"adaptive_vllm: unknown method {method!r}; choose from {', '.join(METHODS)}")
            if policy == "vllm_schedule":
                spec["num_speculative_tokens_per_batch_size"] = args.vllm_schedule
            elif policy == "control":
                section["control"] = {**args.control, "log_path": str(log_dir / f"{method}.jsonl")}
            elif policy != "fixed":
                raise SystemExit(f"adaptive_vllm: unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
            out.append((f"{method}@{policy}", method, spec, {"specplug": section} if section else None))
    return out


def _run_engine(model: str, prompts: list[dict], single: int, args, spec, additional) -> dict:
    from specplug.integrations.vllm.jobs import run_job

    job = {"mode": "timed", "model": model, "prompts": prompts, "max_new_tokens": args.max_new_tokens, "temperature": 0.0,
           "seed": 0, "speculative_config": spec, "additional_config": additional, "batch": True, "single_first": single,
           "max_num_seqs": len(prompts), "max_model_len": 4096}
    # VLLM_CPU_OMP_THREADS_BIND: the suite's cpu_bind unless the environment sets it. vLLM applies it
    # only in its multiprocess executor; a job's engine runs in-process, where it changes nothing
    lines, _ = run_job(job, env={"VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", str(args.cpu_bind))})
    version = next((line["versions"]["vllm_version"] for line in lines if "versions" in line), None)
    batch1 = [line for line in lines if "seconds" in line and "prompt_id" in line]
    in_batch = {line["prompt_id"]: line["output_ids"] for line in lines if line.get("in_batch")}
    totals = next(line["batch"] for line in lines if "batch" in line)
    return {"vllm_version": version, "batch1": batch1,
            "batch": {"seconds": totals["seconds"], "drafted": totals.get("num_draft_tokens", 0),
                      "accepted": totals.get("num_accepted_tokens", 0), "outputs": [in_batch[p["id"]] for p in prompts]}}


def _decisions(path: Path) -> dict | None:
    """The controller's log summarised by batch size: steps, why it chose (warm-up, probe, plan), share
    that sent drafts, mean k, expected vs realised accepted, and the cost split per step: the engine
    step's wall time for steps that sent no draft and for those that did, beside the adapter's own
    drafting and deciding time (part of every step, speculating or not)."""
    if not path.exists():
        return None
    by: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        key = "1" if rec["batch"] == 1 else "2-8" if rec["batch"] <= 8 else "9+"
        b = by.setdefault(key, {"steps": 0, "speculating": 0, "drafted": 0, "rows": 0, "expected": 0.0, "realised": 0,
                                "why": {}, "plain_step_ms": [0.0, 0], "spec_step_ms": [0.0, 0], "draft_ms": 0.0, "control_ms": 0.0})
        b["steps"] += 1
        b["speculating"] += int(rec["drafted"] > 0)
        b["drafted"] += rec["drafted"]
        b["rows"] += rec["batch"]
        b["expected"] += rec["expected_accepted"]
        b["realised"] += rec["realised_accepted"]
        b["why"][rec.get("why", "")] = b["why"].get(rec.get("why", ""), 0) + 1
        if "step_ms" in rec:
            side = b["spec_step_ms" if rec["drafted"] else "plain_step_ms"]
            side[0] += rec["step_ms"]
            side[1] += 1
        b["draft_ms"] += rec.get("draft_ms", 0.0)
        b["control_ms"] += rec.get("control_ms", 0.0)
        b["cost"] = [rec["cost_a_s"], rec["cost_b_s_per_token"]]
    for b in by.values():
        for side in ("plain_step_ms", "spec_step_ms"):
            total, n = b[side]
            b[side] = total / n if n else None
        b["draft_ms"] /= max(b["steps"], 1)
        b["control_ms"] /= max(b["steps"], 1)
    return by


def _summarize(raw: dict, categories: list[str], single_ids: set[str]) -> dict:
    plain = raw["plain"]
    plain_rows = {r["prompt_id"]: r for r in plain["batch1"]}
    plain_batch_tokens = sum(len(o) for o in plain["batch"]["outputs"])
    out = {}
    for name, res in raw.items():
        if "batch1" not in res:
            out[name] = {"error": res.get("error")}
            continue
        entry: dict[str, Any] = {"categories": {}}
        for cat in categories + ["overall"]:
            rows = [r for r in res["batch1"] if cat in ("overall", r["category"])]
            base = [plain_rows[r["prompt_id"]] for r in rows]
            new, acc, drafted = (sum(r[k] for r in rows) for k in ("new_tokens", "accepted", "drafted"))
            seconds = sum(r["seconds"] for r in rows)
            base_tps = sum(r["new_tokens"] for r in base) / max(sum(r["seconds"] for r in base), 1e-9)
            entry["categories"][cat] = {
                "prompts": len(rows), "new_tokens": new, "steps": max(new - acc, 1), "drafted": drafted, "accepted": acc,
                "seconds": seconds, "speedup": (new / max(seconds, 1e-9)) / base_tps,
                "identical": sum(r["output_ids"] == plain_rows[r["prompt_id"]]["output_ids"] for r in rows),
            }
        b, pb = res["batch"], plain["batch"]
        new = sum(len(o) for o in b["outputs"])
        entry["batch"] = {"tokens_per_s": new / b["seconds"], "speedup": (new / b["seconds"]) / (plain_batch_tokens / pb["seconds"]),
                          "mat": new / max(new - b["accepted"], 1), "drafted": b["drafted"], "accepted": b["accepted"],
                          "seconds": b["seconds"], "identical": sum(x == y for x, y in zip(b["outputs"], pb["outputs"])),
                          "prompts": len(b["outputs"])}
        entry["config"] = res.get("config")
        if res.get("decisions"):
            entry["decisions"] = res["decisions"]
        out[name] = entry
    return out


def _unsteadiness(drift: dict, names: list[str], key: str) -> float:
    """The largest run-to-run change among the engines ``names`` (|1 - second run's tokens/s over the
    first's|, ``key`` "batch1" or "batch"); 0 when they ran once."""
    return max((abs(1.0 - d[key]) for name in names if (d := drift.get(name))), default=0.0)


def _verdict(goal: dict, value: float, threshold: float, unsteady: float) -> dict:
    """``goal`` with its verdict: met / not met, or undecided when the value lies closer to the
    threshold (relatively) than the engines' two runs differed: the machine's drift, not the method,
    would decide it."""
    if unsteady and abs(value / threshold - 1.0) < unsteady:
        return {**goal, "met": None, "verdict": "undecided",
                "figure": goal["figure"] + f"; the engines' two runs differed by up to {unsteady:.0%}, more than the margin"}
    return {**goal, "met": value >= threshold}


def _goals(summary: dict, methods: list[str], drift: dict | None = None) -> list[dict]:
    drift = drift or {}
    goals = []
    for method in methods:
        ctl, fixed = summary.get(f"{method}@control"), summary.get(f"{method}@fixed")
        sched = summary.get(f"{method}@vllm_schedule")
        best = ctl if ctl and "batch" in ctl else sched if method not in CUSTOM_CLASS else None
        label = "controller" if best is ctl else "vLLM's schedule (the controller does not apply to vLLM-native methods)"
        best_name = f"{method}@control" if best is ctl else f"{method}@vllm_schedule"
        if best is None or "batch" not in best:
            goals.append({"goal": f"{method}: whole-batch throughput >= 0.98x plain", "met": None, "figure": "not measured"})
            continue
        whole = best["batch"]["speedup"]
        goals.append(_verdict({"goal": f"{method} with the {label}: whole-batch throughput >= 0.98x plain",
                               "figure": f"{whole:.2f}x; fixed k {fmt(fixed['batch']['speedup'], 'x') if fixed and 'batch' in fixed else '-'}"},
                              whole, 0.98, _unsteadiness(drift, ["plain", best_name], "batch")))
        if fixed and "categories" in fixed:
            one, ref = best["categories"]["overall"]["speedup"], fixed["categories"]["overall"]["speedup"]
            goals.append(_verdict({"goal": f"{method} with the {label}: batch-1 speedup within 5% of fixed k's",
                                   "figure": f"{one:.2f}x vs fixed k {ref:.2f}x ({one / ref:.2f} of it)"},
                                  one / ref, 0.95, _unsteadiness(drift, [best_name, f"{method}@fixed"], "batch1")))
    return goals


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.documents import write_documents
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.bench.suites import settings_of
    from specplug.integrations.vllm.jobs import VllmJobError
    from specplug.models import load_model, resolve_model

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    load_before = os.getloadavg()
    _, tokenizer = load_model(args.model)
    prompts, _ = load_prompts(f"spec-bench:{args.per_category}")
    categories = list(dict.fromkeys(p.category for p in prompts))
    # the batch-1 prompts first (the first of each category), then the rest of the whole set
    seen: dict[str, int] = {}
    first, rest = [], []
    for p in prompts:
        seen[p.category] = seen.get(p.category, 0) + 1
        (first if seen[p.category] <= args.batch1_per_category else rest).append(p)
    ordered, single = first + rest, len(first)
    prompt_ids = [{"id": p.id, "category": p.category, "token_ids": encode(p, tokenizer, True)} for p in ordered]
    single_ids = {p["id"] for p in prompt_ids[:single]}
    model = str(resolve_model(args.model))
    raw: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="specplug-adaptive-") as tmp:
        tmp_path = Path(tmp)
        head = _eagle3_head(args, tmp_path) if "eagle3" in args.methods else None
        configs = _configs(args, head, tmp_path)
        runs: dict[str, list[dict]] = {}
        for rep in range(args.repeats):
            for name, method, spec, additional in configs if rep % 2 == 0 else configs[::-1]:
                if name in raw:  # failed in an earlier pass
                    continue
                print(f"vLLM {name} (pass {rep + 1}/{args.repeats}) ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                try:
                    res = _run_engine(model, prompt_ids, single, args, spec, additional)
                except VllmJobError as err:
                    raw[name] = {"error": str(err).splitlines()[-1][:500]}
                    print(f"  {name} failed: {raw[name]['error']}", file=sys.stderr)
                    continue
                res["config"] = {"speculative_config": spec, "additional_config": additional}
                log = tmp_path / f"{method}.jsonl"
                res["decisions"] = _decisions(log) if "@control" in name else None
                if "@control" in name and log.exists():  # the whole per-step log, kept in the cache (too big to commit)
                    from specplug.models import cache_dir

                    keep = cache_dir() / "bench" / "adaptive_vllm_logs" / f"{args.stem}{'_quick' if quick else ''}_{method}_pass{rep + 1}.jsonl"
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    keep.write_text(log.read_text())
                    log.unlink()
                    print(f"  decision log: {keep}", file=sys.stderr, flush=True)
                runs.setdefault(name, []).append(res)
                print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        drift = {}
        for name, passes in runs.items():
            if name not in raw:
                raw[name], drift[name] = merge_passes(passes)
        if "batch1" not in raw.get("plain", {}):
            raise SystemExit(f"adaptive_vllm: plain decoding failed: {raw.get('plain')}")
    summary = _summarize(raw, categories, single_ids)
    meta = {"command": args.command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "model": args.model, "hardware": hardware(), "per_category": args.per_category,
            "batch1_per_category": args.batch1_per_category, "max_new_tokens": args.max_new_tokens, "k": args.k,
            "vllm_schedule": args.vllm_schedule, "control": args.control, "quick": quick, "cpu_bind": args.cpu_bind,
            "eagle3_head": head, "vllm_version": next((r.get("vllm_version") for r in raw.values() if r.get("vllm_version")), None),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "drift": drift, "repeats": args.repeats,
            "num_prompts": len(prompt_ids), "batch1_prompts": single, "stem": args.stem}
    return write_documents(_documents(summary, meta, categories, _goals(summary, args.methods, drift)), out_dir, quick)


def _documents(summary: dict, meta: dict, categories: list[str], goals: list[dict]) -> dict:
    per, extra_batch, failed, decisions = {}, {}, {}, {}
    for name, e in summary.items():
        if "categories" not in e:
            failed[name] = e.get("error")
            continue
        aggs = {cat: aggregate_json(prompts=a["prompts"], new_tokens=a["new_tokens"], steps=a["steps"], drafted=a["drafted"],
                                    accepted=a["accepted"], seconds=a["seconds"], speedup=a["speedup"],
                                    identical=None if name == "plain" else a["identical"])
                for cat, a in e["categories"].items()}
        per[name] = {"overall": aggs.pop("overall"), "categories": aggs}
        extra_batch[name] = {**e["batch"], "config": e.get("config")}
        if e.get("decisions"):
            decisions[name] = e["decisions"]
    head = meta.get("eagle3_head")
    title = "Speculation that never costs throughput: vLLM (CPU), fixed k vs vLLM's schedule vs specplug's controller"
    vmeta = {"title": title, "model": meta["model"], "engine": "vllm",
             "prompts": f"spec-bench:{meta['batch1_per_category']} at batch 1; spec-bench:{meta['per_category']} in one batch",
             "num_prompts": meta["batch1_prompts"], "categories": categories, "k": meta["k"],
             "max_new_tokens": meta["max_new_tokens"], "temperature": 0.0, "dtype": "float32", "device": "cpu",
             "hardware": meta["hardware"], "date": meta["date"], "vllm_version": meta["vllm_version"], "command": meta["command"]}
    extra = {"kind": "adaptive_vllm", "batch": extra_batch, "failed": failed, "decisions": decisions, "goals": goals,
             "run": {k: meta.get(k) for k in ("vllm_schedule", "control", "eagle3_head", "load_before", "load_after", "num_prompts", "quick", "cpu_bind",
                                          "drift", "repeats")},
             "head_note": None if head is None else (f"trained EAGLE-3 head from specplug's cache ({head.get('training')})" if head["trained"] else
                                                     "no trained EAGLE-3 head in the cache: a RANDOM head (acceptance ~0; shows the cost side only)")}
    return {meta.get("stem", "adaptive_vllm"): summary_doc(vmeta, per, extra)}


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    run = extra.get("run", {})
    out = [f"Whole set: {run.get('num_prompts')} prompts in one `generate` call. vLLM's schedule: "
           f"`{json.dumps(run.get('vllm_schedule'))}`; controller: `{json.dumps(run.get('control'))}`. "
           f"Load average before / after: {run.get('load_before')} / {run.get('load_after')}. "
           f"VLLM_CPU_OMP_THREADS_BIND was `{run.get('cpu_bind')}`; vLLM applies it only in its multiprocess executor, "
           "and these engines run in-process, so it bound nothing.", ""]
    drift = {name: d for name, d in (run.get("drift") or {}).items() if d}
    if drift:
        out += [f"Every engine ran {run.get('repeats')} times, the second pass in reverse order (linear drift cancels); "
                "figures use the mean. Run-to-run steadiness, tokens/s of the second run over the first (1.000: none): "
                + "; ".join(f"{name} {d['batch1']:.3f} at batch 1, {d['batch']:.3f} in the batch"
                            + ("" if d["same_outputs"] else " (OUTPUTS DIFFER)") for name, d in drift.items()) + ".", ""]
    if extra.get("head_note"):
        out += [f"EAGLE-3: {extra['head_note']}.", ""]
    out += [f"{heading}# The whole set in one batch", "",
            "| config | throughput vs plain | tokens/s | MAT | drafted | accepted | seconds | same output as plain |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, b in extra.get("batch", {}).items():
        out.append(f"| {name} | {fmt(b['speedup'], 'x')} | {fmt(b['tokens_per_s'])} | {fmt(b['mat'])} | {b['drafted']} | "
                   f"{b['accepted']} | {fmt(b['seconds'])} | {b['identical']}/{b['prompts']} |")
    out += [""] + [f"- {m} failed: {err}" for m, err in extra.get("failed", {}).items()]
    if extra.get("decisions"):
        out += ["", f"{heading}# The controller's decisions", "",
                "From its per-step log, by batch size: steps (and why: warm-up, probe of a batch size not measured yet, "
                "plan from the cost model), share of steps that sent any draft, mean k per row, expected and realised "
                "accepted tokens, its fitted step cost c(T) = a + b T at the end, and the cost split per step: the "
                "engine step's wall time for steps that sent no draft and for steps that did, and the adapter's own "
                "drafting and deciding time inside every step.", "",
                "| config | batch | steps | why | speculating | mean k per row | expected accepted | realised accepted | "
                "a (ms) | b (ms/token) | step ms, no draft | step ms, drafts | draft ms | decide ms |",
                "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, by in extra["decisions"].items():
            for key, b in by.items():
                why = ", ".join(f"{w} {n}" for w, n in b.get("why", {}).items())
                out.append(f"| {name} | {key} | {b['steps']} | {why} | {b['speculating'] / max(b['steps'], 1):.0%} | "
                           f"{b['drafted'] / max(b['rows'], 1):.2f} | {b['expected']:.0f} | {b['realised']} | "
                           f"{b['cost'][0] * 1e3:.1f} | {b['cost'][1] * 1e3:.2f} | {fmt(b.get('plain_step_ms'))} | "
                           f"{fmt(b.get('spec_step_ms'))} | {fmt(b.get('draft_ms'))} | {fmt(b.get('control_ms'))} |")
        out.append("")
    return out + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="adaptive_vllm", run=run, render=render, defaults=DEFAULTS)
