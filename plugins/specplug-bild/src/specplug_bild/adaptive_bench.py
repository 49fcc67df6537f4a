"""The suite kind ``adaptive_methods``: adaptive drafting methods beside the same drafter at its best fixed k.

Suite ``benchmarks/suites/adaptive_methods.toml``. Reference engine, SmolLM2-135M-Instruct float32 on the
CPU, greedy, Spec-Bench (``per_category`` prompts per category, one per category first, chat template),
``max_new_tokens`` new tokens, torch on ``threads`` threads. For every prompt, in this order and back to
back (so load changes hit all alike): plain decoding, the drafter (``sps`` with the target's layers
``drafter``) at every fixed k of ``ks``, then each adaptive method, each built by id from the registry
(a method that is not installed is skipped with a note):

- ``bild`` (with its verifier ``bild``: lossy) for each (fallback, rollback) of ``bild``;
- ``cs_drafting`` with the same drafter over Max-Gram, for each ``lengths`` of ``cs_lengths``;
- ``faster_cascades`` (its verifier: lossy) for each deferral threshold of ``cascade_alpha``;
- with ``eesd_head`` (a folder 'specplug train eesd' wrote): ``eesd`` with its Thompson-sampling controller
  beside its own early exit at every fixed k of ``ks`` (``controller = "fixed"``);
- with ``specdec_pp_head`` (a folder 'specplug train specdec_pp --draft-layers DRAFTER' wrote): ``specdec_pp``
  at each stopping threshold of ``specdec_pp_thresholds`` (at most ``specdec_pp_max_draft`` tokens), beside
  the same drafter's fixed k (the ``sps`` rows): the head must have been trained on the drafter's layers.

Figures per variant: MAT, mean draft length (drafted tokens per step), speedup over plain decoding's
tokens/s in the same run, the cost split (draft ms per step, verify ms per target forward, the rest as
overhead), and for lossy methods what they give up: token agreement with plain output (position by
position) and the target's mean log-likelihood per token of the output (teacher-forced, untimed).
The goal (issue 22): each adaptive method beats its drafter's best fixed k (speedup, same run).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

DEFAULTS = {"drafter": "0-11,18-29", "ks": [1, 2, 3, 5], "bild": [[0.5, 2.0], [0.8, 1.0]], "bild_k": 8,
            "cs_lengths": [[3, 2], [2, 3]], "cs_inner_k": 3, "cascade_alpha": [0.2], "cascade_k": 5,
            "eesd_head": None, "eesd_max_draft": 8,
            "specdec_pp_head": None, "specdec_pp_thresholds": [0.5, 0.7], "specdec_pp_max_draft": 8,
            "per_category": 2, "max_prompts": None, "max_new_tokens": 128, "threads": 1, "notes": []}


def variants(args, registry) -> tuple[dict[str, dict], list[str]]:
    """``{name: {"method", "options", "verifier", "verifier_options", "k", "fixed"}}`` and notes on skips."""
    from specplug.registry import NotRunnableError, UnknownIdError

    def installed(method_id: str) -> bool:
        try:
            registry.method(method_id)
            return True
        except (NotRunnableError, UnknownIdError):
            notes.append(f"skipped {method_id}: not installed here")
            return False

    notes: list[str] = []
    out: dict[str, dict] = {}
    d = args.drafter
    if installed("sps"):
        for k in args.ks:
            out[f"sps:k={k}"] = dict(method="sps", options={"layers": d}, verifier=None, verifier_options=None, k=k, fixed=True)
    if installed("bild"):
        for fallback, rollback in args.bild:
            out[f"bild:fb={fallback} rb={rollback}"] = dict(
                method="bild", options={"layers": d, "fallback": fallback}, verifier="bild",
                verifier_options={"rollback": rollback}, k=args.bild_k, fixed=False)
    if installed("cs_drafting"):
        for lengths in args.cs_lengths:
            out[f"cs_drafting:lengths={lengths}"] = dict(
                method="cs_drafting", options={"drafters": [d], "lengths": list(lengths), "inner_k": args.cs_inner_k},
                verifier=None, verifier_options=None, k=sum(lengths), fixed=False)
    try:
        registry.method("faster_cascades")
        for alpha in args.cascade_alpha:
            out[f"faster_cascades:alpha={alpha}"] = dict(
                method="faster_cascades", options={"layers": d}, verifier="faster_cascades",
                verifier_options={"alpha": alpha}, k=args.cascade_k, fixed=False)
    except (NotRunnableError, UnknownIdError):
        notes.append("skipped faster_cascades: not installed here")
    if args.specdec_pp_head and installed("specdec_pp"):
        _check_specdec_pp_head(args.specdec_pp_head, d)
        for h in args.specdec_pp_thresholds:
            out[f"specdec_pp:h={h}"] = dict(method="specdec_pp", options={"head": args.specdec_pp_head, "threshold": h,
                                                                          "max_draft": args.specdec_pp_max_draft},
                                            verifier=None, verifier_options=None, k=args.specdec_pp_max_draft, fixed=False)
    if args.eesd_head:
        if not installed("eesd"):
            return out, notes
        if not Path(args.eesd_head).expanduser().is_dir():
            raise SystemExit(f"eesd_head {args.eesd_head} does not exist: train one with 'specplug train eesd' first")
        for k in args.ks:
            out[f"eesd:fixed k={k}"] = dict(method="eesd", options={"head": args.eesd_head, "controller": "fixed", "max_draft": k},
                                            verifier=None, verifier_options=None, k=k, fixed=True)
        out["eesd:thompson"] = dict(method="eesd", options={"head": args.eesd_head, "max_draft": args.eesd_max_draft},
                                    verifier=None, verifier_options=None, k=args.eesd_max_draft, fixed=False)
    return out, notes


def _check_specdec_pp_head(folder: str, drafter: str) -> None:
    """The acceptance head predicts rejections of one draft model: it must be the drafter the sps rows use."""
    import json

    from specplug.models.derive import parse_layers

    config = Path(folder).expanduser() / "config.json"
    if not config.exists():
        raise SystemExit(f"specdec_pp_head {folder} holds no trained head: train one with "
                         f"'specplug train specdec_pp --model smollm2-135m --draft-layers {drafter}' first")
    layers = json.loads(config.read_text()).get("draft_layers")
    if layers != parse_layers(drafter, 10_000):
        raise SystemExit(f"specdec_pp_head {folder} was trained for the draft layers {layers}, but this suite's drafter is "
                         f"{drafter}: retrain it with --draft-layers {drafter} (or set drafter to its layers)")


def head_records(args) -> list[str]:
    """One line per trained head the run used, from its training record: a head trained for a few
    steps drafts nothing the target accepts, and the page must say how each head was trained."""
    from specplug.kit.heads import HeadMetadata

    heads = (("specdec_pp", args.specdec_pp_head), ("eesd", args.eesd_head))
    return [f"{method} head ({folder}): {HeadMetadata.describe(folder)}" for method, folder in heads if folder]


def target_loglik(model, prompt: list[int], output: list[int]) -> float:
    """The target's mean log-probability per token of ``output`` after ``prompt`` (teacher-forced)."""
    import torch

    if not output:
        return float("nan")
    ids = torch.tensor([prompt + output])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    logp = torch.log_softmax(logits, -1).gather(1, torch.tensor(output)[:, None])[:, 0]
    return float(logp.mean())


def agreement(output: list[int], plain: list[int]) -> float:
    """Fraction of positions where ``output`` has plain decoding's token (over the longer of the two)."""
    n = max(len(output), len(plain))
    return sum(a == b for a, b in zip(output, plain)) / n if n else 1.0


def _measure(args, prompts, models) -> tuple[dict[str, list[dict]], list[str]]:
    import torch

    from specplug.bench.runner import encode
    from specplug.engine import ReferenceEngine
    from specplug.registry import get_registry

    model, tokenizer = models
    registry = get_registry()
    table, notes = variants(args, registry)
    engine = ReferenceEngine(model, tokenizer)
    records: dict[str, list[dict]] = {name: [] for name in ["plain", *table]}
    for i, prompt in enumerate(prompts):
        ids = encode(prompt, tokenizer, True)
        plain = engine.generate([ids], None, k=1, max_new_tokens=args.max_new_tokens)[0]
        runs = {"plain": (plain, {})}
        for name, v in table.items():
            proposer = registry.method(v["method"]).build(v["options"])
            verifier = registry.verifier(v["verifier"]).build(v["verifier_options"]) if v["verifier"] else None
            runs[name] = (engine.generate([ids], proposer, verifier, k=v["k"], max_new_tokens=args.max_new_tokens)[0], v)
        with torch.inference_mode():  # quality, untimed
            for name, (result, v) in runs.items():
                s = result.stats
                records[name].append({
                    "id": prompt.id, "category": prompt.category, "new_tokens": s.new_tokens, "steps": s.steps,
                    "drafted": s.drafted, "accepted": s.accepted, "seconds": s.wall_s, "draft_s": s.draft_s,
                    "verify_s": s.verify_s, "identical": result.token_ids == plain.token_ids,
                    "agreement": agreement(result.token_ids, plain.token_ids),
                    "loglik": target_loglik(model, ids, result.token_ids) if name == "plain" or v.get("verifier") else None,
                })
        print(f"prompt {i + 1}/{len(prompts)} ({prompt.category}) done", file=sys.stderr, flush=True)
    return records, notes


def summarize(records: dict[str, list[dict]]) -> list[dict]:
    """One row per variant: MAT, mean draft length, speedup, cost split, quality."""
    def total(rows, key):
        return sum(r[key] for r in rows)

    plain = records["plain"]
    plain_tps = total(plain, "new_tokens") / total(plain, "seconds")
    rows = []
    for name, recs in records.items():
        steps, tokens, seconds = total(recs, "steps"), total(recs, "new_tokens"), total(recs, "seconds")
        draft_s, verify_s = total(recs, "draft_s"), total(recs, "verify_s")
        lls = [r["loglik"] for r in recs if r["loglik"] is not None]
        rows.append({
            "method": name, "prompts": len(recs), "mat": tokens / steps, "draft_len": total(recs, "drafted") / steps,
            "acceptance": total(recs, "accepted") / total(recs, "drafted") if total(recs, "drafted") else None,
            "tokens_per_s": tokens / seconds, "speedup": (tokens / seconds) / plain_tps,
            "draft_ms_per_step": 1000 * draft_s / steps, "verify_ms_per_step": 1000 * verify_s / steps,
            "overhead_ms_per_step": 1000 * (seconds - draft_s - verify_s) / steps,
            "identical": sum(r["identical"] for r in recs), "agreement": sum(r["agreement"] for r in recs) / len(recs),
            "loglik": sum(lls) / len(lls) if lls else None,
            "new_tokens": tokens, "steps": steps, "seconds": seconds, "draft_s": draft_s, "verify_s": verify_s,
            "drafted": total(recs, "drafted"), "accepted": total(recs, "accepted"),
        })
    return rows


#: each adaptive family and the fixed-k variants of its own drafter
BASELINES = {"bild": "sps:k=", "cs_drafting": "sps:k=", "faster_cascades": "sps:k=", "specdec_pp": "sps:k=",
             "eesd:thompson": "eesd:fixed k="}


def goals(rows: list[dict]) -> list[dict]:
    out = []
    for family, baseline in BASELINES.items():
        fixed = [r for r in rows if r["method"].startswith(baseline)]
        mine = [r for r in rows if r["method"] == family or r["method"].startswith(family + ":")]
        if not fixed or not mine:
            continue
        best = max(fixed, key=lambda r: r["speedup"])
        top = max(mine, key=lambda r: r["speedup"])
        out.append({"goal": f"{family} beats its drafter's best fixed k ({best['method']}, {fmt(best['speedup'], 'x')})",
                    "met": top["speedup"] > best["speedup"],
                    "figure": f"best {top['method']}: {fmt(top['speedup'], 'x')}, "
                              f"{top['speedup'] / best['speedup']:.2f}x the best fixed k"})
    return out


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = [f"- {n}" for n in extra.get("notes", [])] + [""]
    out += goal_lines(extra.get("goals", []), heading)
    out += [f"{heading}# Methods beside the drafter's fixed k", "",
            "MAT = tokens per target forward; draft length = drafted tokens per step; speedup = tokens/s over plain "
            "decoding's in the same run. Cost split per step: draft (the proposer), verify (one target forward and the "
            "verifier), overhead (the rest). Agreement = share of positions with plain output's token; log-lik = the "
            "target's mean log-probability per output token (lossy methods and plain).", "",
            "| method | MAT | draft length | acceptance | speedup | draft ms/step | verify ms/step | overhead ms/step | "
            "same as plain | agreement | log-lik |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in extra["rows"]:
        out.append(f"| {r['method']} | {fmt(r['mat'])} | {fmt(r['draft_len'])} | {fmt(r['acceptance'], 'pct')} | "
                   f"{fmt(r['speedup'], 'x')} | {r['draft_ms_per_step']:.1f} | {r['verify_ms_per_step']:.1f} | "
                   f"{r['overhead_ms_per_step']:.1f} | {r['identical']}/{r['prompts']} | {fmt(r['agreement'], 'pct')} | "
                   f"{fmt(r['loglik'])} |")
    return out + [""]


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    with torch.no_grad():
        return _run(suite, quick, out_dir)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def _run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    from specplug.bench.documents import write_documents
    from specplug.bench.prompts import load_prompts, one_per_category_first
    from specplug.bench.runner import hardware
    from specplug.bench.suites import settings_of
    from specplug.models import load_model

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    torch.set_num_threads(int(args.threads))
    prompts, label = load_prompts(f"spec-bench:{args.per_category}")
    prompts = one_per_category_first(prompts)
    if args.max_prompts:
        prompts = prompts[: args.max_prompts]
        label = f"{label}, first {len(prompts)} (one per category first)"
    load_start = _load()
    started = time.perf_counter()
    records, notes = _measure(args, prompts, load_model("smollm2-135m"))
    rows = summarize(records)
    notes = list(args.notes) + notes + head_records(args) + [
        f"load average at start {load_start}, at end {_load()}; {time.perf_counter() - started:.0f} s; torch threads {args.threads}"]
    meta = {"title": "Adaptive drafting (bild, cs_drafting, faster_cascades, specdec_pp, eesd) beside the drafter's best fixed k",
            "model": "smollm2-135m", "engine": "reference", "prompts": label, "num_prompts": len(prompts),
            "max_new_tokens": args.max_new_tokens, "temperature": 0.0, "drafter": f"sps layers {args.drafter}",
            "dtype": "float32", "device": "cpu",
            "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": args.command}
    per_method = {r["method"]: {"overall": aggregate_json(
        new_tokens=r["new_tokens"], steps=r["steps"], drafted=r["drafted"], accepted=r["accepted"], seconds=r["seconds"],
        draft_s=r["draft_s"], verify_s=r["verify_s"], speedup=r["speedup"], prompts=r["prompts"], identical=r["identical"])}
        for r in rows}
    extra = {"kind": "adaptive_methods", "rows": rows, "goals": goals(rows), "notes": notes, "records": records}
    return write_documents({"adaptive_methods": summary_doc(meta, per_method, extra)}, out_dir, quick)


KIND = BenchKindSpec(id="adaptive_methods", run=run, render=render, defaults=DEFAULTS)
