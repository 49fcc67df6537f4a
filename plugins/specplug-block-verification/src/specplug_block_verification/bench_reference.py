"""Suite kind ``verification_reference``: the verification family in specplug's reference engine.

SmolLM2-135M-Instruct float32, Spec-Bench prompts (chat template), each prompt decoded by every
configuration in turn (interleaved per prompt), beside plain decoding at the same temperature:

- greedy: ``plain``, ``sps`` (a chain from ``draft_layers`` of the target), ``sps+fly`` (lossy),
  ``specinfer`` (its merged token tree over the same draft);
- temperature ``temperature``: ``plain``, ``sps+speculative_sampling`` (token-wise),
  ``sps+block_verification``, ``sps+mtad`` (lossy), ``specinfer`` (multi-step speculative sampling).

Methods are built by id from the registry (no plugin imports another). Figures: MAT, acceptance,
tokens/s and speedup over plain at the same temperature, and the quality a lossy verifier gives up:
at temperature 0 the share of each output equal to plain greedy's before the first difference (and
how many are identical); at temperature > 0 the target's mean negative log-likelihood per emitted
token (temperature 1) beside plain sampling's, which an exact method matches up to sampling noise.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND"]

DEFAULTS = {
    "model": "smollm2-135m",
    "draft_layers": "0-11,18-29",
    "per_category": 1,
    "max_prompts": None,
    "max_new_tokens": 48,
    "k": 5,
    "tree_budget": 8,
    "temperature": 1.0,
    "seed": 0,
    "note": None,
}


def configs(args) -> list[tuple[str, float, str | None, dict, str | None, int]]:
    """``(name, temperature, method id, options, verifier, k)`` in run order."""
    chain = {"layers": args.draft_layers}
    tree = {"draft_layers": args.draft_layers, "budget": args.tree_budget}
    t = float(args.temperature)
    return [
        ("plain@greedy", 0.0, None, {}, None, 1),
        ("sps@greedy", 0.0, "sps", chain, "greedy_match", args.k),
        ("fly:sps@greedy", 0.0, "sps", chain, "fly", args.k),
        ("specinfer@greedy", 0.0, "specinfer", tree, "tree_verification", args.tree_budget),
        (f"plain@t{t:g}", t, None, {}, None, 1),
        (f"speculative_sampling:sps@t{t:g}", t, "sps", chain, "speculative_sampling", args.k),
        (f"block_verification:sps@t{t:g}", t, "sps", chain, "block_verification", args.k),
        (f"mtad:sps@t{t:g}", t, "sps", chain, "mtad", args.k),
        (f"specinfer@t{t:g}", t, "specinfer", tree, "tree_verification", args.tree_budget),
    ]


def target_nll(model, prompt: list[int], output: list[int]) -> float:
    """Sum over ``output`` of -log p_target(token | everything before), at temperature 1."""
    import torch

    if not output:
        return 0.0
    ids = torch.tensor([prompt + output])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(output)[:, None])
    return float(-logp.sum())


def _agreement(a: list[int], b: list[int]) -> float:
    n = min(len(a), len(b))
    same = next((i for i in range(n) if a[i] != b[i]), n)
    return same / max(len(b), 1)


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    from specplug.bench.documents import write_documents
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.bench.suites import settings_of
    from specplug.engine import ReferenceEngine
    from specplug.models import load_model
    from specplug.protocols import SamplingParams
    from specplug.registry import get_registry

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    model, tokenizer = load_model(args.model)
    prompts, _ = load_prompts(f"spec-bench:{args.per_category}")
    prompts = prompts[: args.max_prompts] if args.max_prompts else prompts
    categories = list(dict.fromkeys(p.category for p in prompts))
    engine = ReferenceEngine(model, tokenizer)
    registry = get_registry()
    plan = configs(args)
    missing = {}
    for name, _, method, _, verifier, _ in plan:
        try:
            if method:
                registry.method(method)
            if verifier:
                registry.verifier(verifier)
        except Exception as err:  # noqa: BLE001 - a plugin not installed: skipped with a note
            missing[name] = str(err).splitlines()[0][:300]
    plan = [c for c in plan if c[0] not in missing]
    rows: dict[str, list[dict]] = {c[0]: [] for c in plan}
    for i, prompt in enumerate(prompts):
        ids = encode(prompt, tokenizer, True)
        print(f"[{i + 1}/{len(prompts)}] {prompt.id}", file=sys.stderr, flush=True)
        for name, temperature, method, options, verifier, k in plan:
            proposer = registry.method(method).build(options) if method else None
            sampling = SamplingParams(temperature=temperature)
            with torch.no_grad():
                result = engine.generate([ids], proposer, verifier, k=k, max_new_tokens=args.max_new_tokens,
                                         sampling=sampling, seed=args.seed + i)[0]
            s = result.stats
            rows[name].append({"prompt_id": prompt.id, "category": prompt.category, "new_tokens": s.new_tokens,
                               "steps": s.steps, "drafted": s.drafted, "accepted": s.accepted, "seconds": s.wall_s,
                               "draft_s": s.draft_s, "verify_s": s.verify_s, "output_ids": result.token_ids,
                               "nll": target_nll(model, ids, result.token_ids)})
    per, quality = {}, {}
    for name, temperature, *_ in plan:
        base = next(c[0] for c in plan if c[0].startswith("plain@") and c[1] == temperature)
        plain = {r["prompt_id"]: r for r in rows[base]}

        def agg(sel):
            new, seconds = sum(r["new_tokens"] for r in sel), sum(r["seconds"] for r in sel)
            ref = [plain[r["prompt_id"]] for r in sel]
            tps = new / max(seconds, 1e-9)
            base_tps = sum(r["new_tokens"] for r in ref) / max(sum(r["seconds"] for r in ref), 1e-9)
            return aggregate_json(prompts=len(sel), new_tokens=new, steps=sum(r["steps"] for r in sel),
                                  drafted=sum(r["drafted"] for r in sel), accepted=sum(r["accepted"] for r in sel),
                                  seconds=seconds, draft_s=sum(r["draft_s"] for r in sel), verify_s=sum(r["verify_s"] for r in sel),
                                  speedup=tps / base_tps,
                                  identical=None if name == base else sum(r["output_ids"] == plain[r["prompt_id"]]["output_ids"] for r in sel))

        per[name] = {"overall": agg(rows[name]), "categories": {c: agg([r for r in rows[name] if r["category"] == c]) for c in categories}}
        new = sum(r["new_tokens"] for r in rows[name])
        quality[name] = {"temperature": temperature, "nll_per_token": sum(r["nll"] for r in rows[name]) / max(new, 1),
                         "plain_nll_per_token": sum(r["nll"] for r in rows[base]) / max(sum(r["new_tokens"] for r in rows[base]), 1),
                         "agreement_with_plain": sum(_agreement(r["output_ids"], plain[r["prompt_id"]]["output_ids"]) for r in rows[name]) / len(rows[name]),
                         "identical": sum(r["output_ids"] == plain[r["prompt_id"]]["output_ids"] for r in rows[name]),
                         "prompts": len(rows[name])}
    t = f"t{float(args.temperature):g}"

    def mat(n):
        return (per.get(n) or {}).get("overall", {}).get("mat")

    goals = []
    if mat(f"block_verification:sps@{t}") is not None and mat(f"speculative_sampling:sps@{t}") is not None:
        b, s = mat(f"block_verification:sps@{t}"), mat(f"speculative_sampling:sps@{t}")
        goals.append({"goal": "block verification's MAT >= token-wise speculative sampling's (same drafter, reference engine)",
                      "met": b >= s, "figure": f"{b:.3f} vs {s:.3f} ({(b / s - 1) * 100:+.1f}%)"})
    meta = {"title": "Verification family in the reference engine: block verification, SpecInfer, MTAD and FLy beside plain and sps",
            "model": args.model, "engine": "specplug_reference", "prompts": f"spec-bench:{args.per_category}",
            "num_prompts": len(prompts), "categories": categories, "k": args.k, "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature, "dtype": "float32", "device": "cpu", "hardware": hardware(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": args.command}
    extra = {"kind": "verification_reference", "quality": quality, "missing": missing, "goals": goals, "note": args.note,
             "draft_layers": args.draft_layers, "tree_budget": args.tree_budget,
             "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}
    return write_documents({suite.name: summary_doc(meta, per, extra)}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = [f"Note: {extra['note']}", ""] if extra.get("note") else []
    out += [f"Draft: SmolLM2 layers {extra['draft_layers']} (sps chains; specinfer trees of {extra['tree_budget']} nodes). "
            f"Load average before / after: {extra['load_before']} / {extra['load_after']}.", "",
            f"{heading}# Acceptance and the quality given up", "",
            "Speedup and agreement are against plain decoding at the same temperature. Agreement: share of each output equal "
            "to plain's before the first difference (greedy: lossless methods give 100%). NLL: the target's mean negative "
            "log-likelihood per emitted token (temperature 1); a lossless method matches plain's up to sampling noise.", "",
            "| config | MAT | acceptance | speedup | draft s | verify s | agreement | identical | NLL/token | plain NLL/token |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in results.methods:
        o, q = results.summary[name]["overall"], extra["quality"][name]
        out.append(f"| {name} | {fmt(o['mat'])} | {fmt(o['acceptance_rate'], 'pct')} | {fmt(o['speedup'], 'x')} | "
                   f"{fmt(o.get('draft_s'))} | {fmt(o.get('verify_s'))} | {q['agreement_with_plain']:.0%} | "
                   f"{q['identical']}/{q['prompts']} | {q['nll_per_token']:.3f} | {q['plain_nll_per_token']:.3f} |")
    out += [""] + [f"- {m} skipped: {err}" for m, err in extra.get("missing", {}).items()] + [""]
    return out + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="verification_reference", run=run, render=render, defaults=DEFAULTS)
