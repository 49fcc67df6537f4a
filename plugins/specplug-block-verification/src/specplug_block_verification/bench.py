"""Suite kind ``verification_vllm``: block verification inside vLLM (CPU) against token-wise
verification and against vLLM's own ``rejection_sample_method: "block"``, same drafts, same seeds.

SmolLM2-135M-Instruct in float32, Spec-Bench prompts with the chat template, each prompt alone
(batch 1), temperature ``temperature`` (1 by default) with a per-request seed, a derived draft model
(``specplug models derive``, layers ``draft_layers``) through vLLM's native ``draft_model`` with
``k`` tokens. One engine per process, in this order (plain first):

- ``plain``: no speculation;
- ``speculative_sampling@native``: vLLM's rejection sampler, drafts sampled with their probabilities
  (``draft_sample_method: probabilistic``);
- ``block_verification@native``: vLLM's ``rejection_sample_method: "block"`` (vLLM pairs it with greedy drafts: it
  computes draft probabilities only for the standard method);
- ``speculative_sampling:level2``: specplug's level 2 verifier hook with ``speculative_sampling`` (token-wise),
  probabilistic drafts: the hook's own cost, and token-wise acceptance on the same footing;
- ``block_verification:level2``: the hook with ``block_verification``, probabilistic drafts.

Figures per engine: MAT, acceptance (accepted / drafted), tokens/s and speedup over plain in the same
run. Goals (issue 21): block verification accepts at least as many tokens per target step as
token-wise verification and as vLLM's block method.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND"]

DEFAULTS = {
    "model": "smollm2-135m",
    "draft_layers": "0-11,18-29",
    "per_category": 1,
    "max_prompts": None,
    "max_new_tokens": 64,
    "k": 5,
    "temperature": 1.0,
    "seed": 0,
    "note": None,
    "engines": ["plain", "speculative_sampling@native", "block_verification@native", "speculative_sampling:level2", "block_verification:level2"],
}

ENGINES = {
    # name: (speculative_config extras, specplug verifier or None)
    "plain": (None, None),
    "speculative_sampling@native": ({"draft_sample_method": "probabilistic"}, None),
    "block_verification@native": ({"rejection_sample_method": "block"}, None),
    "speculative_sampling:level2": ({"draft_sample_method": "probabilistic"}, "speculative_sampling"),
    "block_verification:level2": ({"draft_sample_method": "probabilistic"}, "block_verification"),
}


def engine_config(name: str, draft: str, k: int) -> tuple[dict | None, dict | None]:
    """``(speculative_config, additional_config)`` of one engine."""
    if name not in ENGINES:
        raise SystemExit(f"verification_vllm: unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    extras, verifier = ENGINES[name]
    if extras is None:
        return None, None
    spec = {"method": "draft_model", "model": draft, "num_speculative_tokens": k, **extras}
    return spec, ({"specplug": {"verifier": verifier}} if verifier else None)


def _run_engine(model: str, prompts: list[dict], args, spec, additional) -> list[dict]:
    from specplug.integrations.vllm.jobs import run_job

    job = {"mode": "timed", "model": model, "prompts": prompts, "max_new_tokens": args.max_new_tokens,
           "temperature": args.temperature, "seed": args.seed, "speculative_config": spec,
           "additional_config": additional, "level2": additional is not None, "max_model_len": 4096}
    lines, _ = run_job(job, env={"SPECPLUG_VLLM_LEVEL2": "1"} if additional is not None else None)
    crash = next((line["crash"] for line in lines if "crash" in line), None)
    if crash:
        from specplug.integrations.vllm.jobs import VllmJobError

        raise VllmJobError(crash)
    return [line for line in lines if "seconds" in line and "prompt_id" in line]


def _aggregate(rows: list[dict], plain_rows: dict[str, dict] | None) -> dict:
    new, acc, drafted = (sum(r[k] for r in rows) for k in ("new_tokens", "accepted", "drafted"))
    seconds = sum(r["seconds"] for r in rows)
    speedup = None
    if plain_rows is not None:
        base = [plain_rows[r["prompt_id"]] for r in rows]
        speedup = (new / max(seconds, 1e-9)) / (sum(r["new_tokens"] for r in base) / max(sum(r["seconds"] for r in base), 1e-9))
    return aggregate_json(prompts=len(rows), new_tokens=new, steps=max(new - acc, 1), drafted=drafted, accepted=acc,
                          seconds=seconds, speedup=speedup)


def _goals(summary: dict) -> list[dict]:
    def mat(name):
        return (summary.get(name) or {}).get("overall", {}).get("mat")

    block = mat("block_verification:level2")
    goals = []
    for other, label in (("speculative_sampling:level2", "token-wise verification (specplug's hook, same drafter)"),
                         ("speculative_sampling@native", "vLLM's standard rejection sampler"),
                         ("block_verification@native", "vLLM's own block method")):
        ref = mat(other)
        if block is None or ref is None:
            goals.append({"goal": f"block verification's MAT >= {label}'s", "met": None, "figure": "not measured"})
        else:
            goals.append({"goal": f"block verification's MAT >= {label}'s", "met": block >= ref,
                          "figure": f"{block:.3f} vs {ref:.3f} ({(block / ref - 1) * 100:+.1f}%)"})
    return goals


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.documents import write_documents
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.bench.suites import settings_of
    from specplug.integrations.vllm.jobs import VllmJobError
    from specplug.models import load_model, resolve_model
    from specplug.models.derive import derive_model

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    load_before = os.getloadavg()
    _, tokenizer = load_model(args.model)
    prompts, _ = load_prompts(f"spec-bench:{args.per_category}")
    prompts = prompts[: args.max_prompts] if args.max_prompts else prompts
    categories = list(dict.fromkeys(p.category for p in prompts))
    encoded = [{"id": p.id, "category": p.category, "token_ids": encode(p, tokenizer, True)} for p in prompts]
    model = str(resolve_model(args.model))
    draft = str(derive_model(args.model, args.draft_layers))
    rows: dict[str, list[dict]] = {}
    failed: dict[str, str] = {}
    configs: dict[str, Any] = {}
    for name in args.engines:
        spec, additional = engine_config(name, draft, args.k)
        configs[name] = {"speculative_config": spec, "additional_config": additional}
        print(f"vLLM {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            rows[name] = _run_engine(model, encoded, args, spec, additional)
        except VllmJobError as err:
            failed[name] = str(err).strip().splitlines()[-1][:500]
            print(f"  {name} failed: {failed[name]}", file=sys.stderr)
            continue
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if "plain" not in rows:
        raise SystemExit(f"verification_vllm: plain decoding failed: {failed.get('plain')}")
    plain_rows = {r["prompt_id"]: r for r in rows["plain"]}
    per: dict[str, dict] = {}
    for name, engine_rows in rows.items():
        per[name] = {"overall": _aggregate(engine_rows, plain_rows),
                     "categories": {c: _aggregate([r for r in engine_rows if r["category"] == c], plain_rows) for c in categories}}
    # same drafts and seeds: how often two engines emitted the same tokens (vLLM's block vs its standard method)
    same = {}
    for a, b in (("block_verification@native", "speculative_sampling@native"), ("block_verification:level2", "speculative_sampling:level2")):
        if a in rows and b in rows:
            other = {r["prompt_id"]: r["output_ids"] for r in rows[b]}
            same[f"{a} vs {b}"] = f"{sum(r['output_ids'] == other[r['prompt_id']] for r in rows[a])}/{len(rows[a])}"
    meta = {"title": "Block verification in vLLM (CPU): specplug's level 2 hook vs token-wise vs vLLM's own block method",
            "model": args.model, "engine": "vllm", "prompts": f"spec-bench:{args.per_category}", "num_prompts": len(encoded),
            "categories": categories, "k": args.k, "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
            "dtype": "float32", "device": "cpu", "hardware": hardware(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": args.command}
    extra = {"kind": "verification_vllm", "configs": configs, "failed": failed, "same_output": same,
             "draft": {"layers": args.draft_layers, "folder": Path(draft).name}, "seed": args.seed,
             "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
             "goals": _goals(per), "quick": quick, "note": args.note}
    stem = suite.name
    return write_documents({stem: summary_doc(meta, per, extra)}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = [f"Note: {extra['note']}", ""] if extra.get("note") else []
    out += [f"Draft: SmolLM2 layers {extra['draft']['layers']} (`specplug models derive`), vLLM's `draft_model`; "
           f"per-request seed {extra['seed']}; load average before / after: {extra['load_before']} / {extra['load_after']}.", "",
           f"{heading}# Engines", "", "| engine | speculative_config | additional_config |", "|---|---|---|"]
    for name, config in extra["configs"].items():
        spec = config["speculative_config"]
        shown = "-" if spec is None else ", ".join(f"{k}={v}" for k, v in spec.items() if k != "model")
        out.append(f"| {name} | {shown} | {config['additional_config'] or '-'} |")
    out += ["", f"{heading}# Acceptance", "", "| engine | MAT | acceptance | tokens/s | speedup |", "|---|---:|---:|---:|---:|"]
    for name in results.methods:
        o = results.summary[name]["overall"]
        out.append(f"| {name} | {fmt(o['mat'])} | {fmt(o['acceptance_rate'], 'pct')} | {fmt(o['tokens_per_s'])} | {fmt(o['speedup'], 'x')} |")
    out.append("")
    for pair, count in extra.get("same_output", {}).items():
        out.append(f"- identical output ({pair}): {count} prompts")
    out += [f"- {m} failed: {err}" for m, err in extra.get("failed", {}).items()] + [""]
    return out + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="verification_vllm", run=run, render=render, defaults=DEFAULTS)
