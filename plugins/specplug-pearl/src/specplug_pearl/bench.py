"""Suite kind ``pearl``: what PEARL's overlap gives on this machine, and what it would give on two devices.

SmolLM2-135M-Instruct float32 in the reference engine, one torch thread per job, Spec-Bench prompts
(chat template), greedy. Per prompt, in this order (so load changes hit all alike): plain decoding;
``sps`` with the same draft and ``k = gamma`` (ordinary speculative decoding: draft, then verify),
built by id from the registry when installed; PEARL with ``parallel = false`` (the algorithm with
no overlap); PEARL with ``parallel = true`` (drafting in a worker thread beside the engine's target
forward). Every output is compared with plain decoding's.

Figures: tokens/s and speedup over plain, MAT, PEARL's phases (pre-verify, rejected at the first
token, post-verify, chained), its drafting and target time, and the time two devices would hide:
per phase ``min(drafting job, target job)``, summed (``hideable``). The projection for a draft and
a target on separate devices is the sequential PEARL run's wall time minus that sum.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path
from types import SimpleNamespace

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND"]

DEFAULTS = {"model": "smollm2-135m", "prompts": "spec-bench:1", "max_new_tokens": 32, "gamma": 3, "layers": "0-11,18-29", "threads": 1}
CONFIGS = ("plain", "sps", "pearl:sequential", "pearl:parallel")


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    from specplug.bench.documents import write_documents
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.bench.suites import settings_of
    from specplug.engine import ReferenceEngine
    from specplug.models import load_model
    from specplug.registry import get_registry
    from specplug_pearl.proposer import PearlOptions, PearlProposer

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    torch.set_num_threads(int(args.threads))
    load_before = os.getloadavg()
    model, tokenizer = load_model(args.model)
    engine = ReferenceEngine(model, tokenizer)
    prompts, _ = load_prompts(args.prompts)
    try:
        sps = get_registry().method("sps")
    except Exception:  # noqa: BLE001 - the comparison is optional: its plugin may not be installed
        sps = None
    pearls = {"pearl:sequential": PearlProposer(PearlOptions(layers=args.layers, gamma=args.gamma, parallel=False)),
              "pearl:parallel": PearlProposer(PearlOptions(layers=args.layers, gamma=args.gamma, parallel=True))}
    rows: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for prompt in prompts:
        ids = encode(prompt, tokenizer, True)
        runs = {"plain": None, "sps": sps.build({"layers": args.layers}) if sps is not None else None, **pearls}
        for name, proposer in runs.items():
            if name == "sps" and proposer is None:
                continue
            before = dict(vars(proposer.counts)) if name.startswith("pearl") else None
            start = time.perf_counter()
            (result,) = engine.generate([ids], proposer, "greedy_match", k=args.gamma, max_new_tokens=args.max_new_tokens)
            wall = time.perf_counter() - start
            row = {"prompt_id": prompt.id, "category": prompt.category, "wall_s": wall, "new_tokens": result.stats.new_tokens,
                   "steps": result.stats.steps, "drafted": result.stats.drafted, "accepted": result.stats.accepted,
                   "output": result.token_ids}
            if before is not None:
                row.update({k: v - before[k] for k, v in vars(proposer.counts).items()})
            rows[name].append(row)
    for proposer in pearls.values():
        proposer.close()
    plain = {r["prompt_id"]: r for r in rows["plain"]}
    base_tps = sum(r["new_tokens"] for r in rows["plain"]) / sum(r["wall_s"] for r in rows["plain"])
    summary, detail = {}, {}
    for name, rs in rows.items():
        if not rs:
            continue
        new, wall = sum(r["new_tokens"] for r in rs), sum(r["wall_s"] for r in rs)
        identical = sum(r["output"] == plain[r["prompt_id"]]["output"] for r in rs)
        summary[name] = {"overall": aggregate_json(prompts=len(rs), new_tokens=new, steps=sum(r["steps"] for r in rs),
                                                   drafted=sum(r["drafted"] for r in rs), accepted=sum(r["accepted"] for r in rs),
                                                   seconds=wall, speedup=(new / wall) / base_tps,
                                                   identical=None if name == "plain" else identical), "categories": {}}
        if name.startswith("pearl"):
            keys = ("pre_phases", "pre_rejected", "pre_drafted", "post_phases", "post_chained", "draft_s", "waited_s", "target_s", "hideable_s")
            detail[name] = {k: sum(r[k] for r in rs) for k in keys} | {"wall_s": wall, "new_tokens": new}
    seq = detail.get("pearl:sequential")
    projection = None
    if seq:
        projected = seq["wall_s"] - seq["hideable_s"]
        projection = {"wall_s": projected, "speedup": (seq["new_tokens"] / projected) / base_tps}
    meta = {"title": "PEARL in the reference engine: overlap on a shared CPU, and the two-device projection",
            "model": args.model, "engine": "reference", "prompts": args.prompts, "num_prompts": len(prompts), "k": args.gamma,
            "max_new_tokens": args.max_new_tokens, "temperature": 0.0, "dtype": "float32", "device": "cpu",
            "hardware": hardware(), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": args.command}
    extra = {"kind": "pearl", "detail": detail, "projection": projection, "base_tokens_per_s": base_tps,
             "run": {"layers": args.layers, "gamma": args.gamma, "threads": args.threads, "load_before": [round(x, 2) for x in load_before],
                     "load_after": [round(x, 2) for x in os.getloadavg()]}}
    return write_documents({"pearl": summary_doc(meta, summary, extra)}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    run = extra.get("run", {})
    out = [f"Draft: layers `{run.get('layers')}` of the target (sharing its weights); window gamma = {run.get('gamma')}; "
           f"{run.get('threads')} torch thread(s) per job; load average before / after: {run.get('load_before')} / {run.get('load_after')}.", "",
           f"{heading}# PEARL's phases and where the time went", "",
           "| run | pre-verify | rejected at the 1st token | drafted in pre-verify | post-verify | chained | drafting s | waited for a draft s | target s | hideable s | wall s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, d in extra.get("detail", {}).items():
        out.append(f"| {name} | {d['pre_phases']} | {d['pre_rejected']} | {d['pre_drafted']} | {d['post_phases']} | {d['post_chained']} | "
                   f"{d['draft_s']:.1f} | {d['waited_s']:.1f} | {d['target_s']:.1f} | {d['hideable_s']:.1f} | {d['wall_s']:.1f} |")
    proj = extra.get("projection")
    if proj:
        out += ["", f"Two devices (projection from the sequential run: its wall time minus the hideable time): "
                f"{proj['wall_s']:.1f} s, {fmt(proj['speedup'], 'x')} over plain decoding measured here."]
    return out + [""] + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="pearl", run=run, render=render, defaults=DEFAULTS)
