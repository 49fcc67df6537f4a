"""The ``trees`` suite kind: token-tree methods beside sps chains (and eagle2 trees, where a head exists).

One process, the reference engine, SmolLM2 float32. Every method is built by id from the registry
(no plugin imports another). Per temperature, prompt by prompt, plain decoding and then each
variant decode the same prompt (interleaved, so load changes hit all alike). Then:

- **MAT against node budget**: sequoia, opt_tree and specexec at each budget of ``budgets`` and the
  sps chain of the same length (the fixed tree specplug had), greedy, on the first
  ``budget_prompts`` prompts (MAT does not depend on timing);
- **verify cost per tree size** on this CPU (:func:`specplug.kit.tree_drafting.measure_verify_costs`)
  and the budget Sequoia's optimiser picks from it;
- **projected H200**: the optimiser on the cost curve ``h200_curve`` (tokens:ms), the budget it
  picks there and the speedup the measured MAT implies, labelled projected (the draft's time per
  depth scaled by the ratio of the two machines' one-token steps).

Writes ``trees.{json,md}`` (temperature 0 and the extras), ``trees_t1.{json,md}`` (temperature 1) and
``trees_budget.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from specplug.bench.kind import BenchKindSpec

__all__ = ["KIND"]

DEFAULTS: dict[str, Any] = {
    "model": "smollm2-135m",
    "per_category": 2,
    "max_prompts": 0,  # 0: all chosen
    "max_new_tokens": 64,
    "temperatures": [0.0, 1.0],
    "draft_layers": "0-3",
    "budget": 16,
    "max_budget": 64,
    "sps_k": [4, 16],
    "methods": ["sequoia", "sequoia_hw", "opt_tree", "specexec", "edgellm"],
    "eagle_head": "",  # a trained EAGLE-3 head folder; "" = the default cache folder if one exists
    "budgets": [4, 8, 16, 32, 64],
    "budget_prompts": 3,
    "budget_methods": ["sequoia", "opt_tree", "specexec"],
    "h200_curve": "1:2.9,8:3.7,64:3.9",
    "chain_max": 16,  # the budget sweep's sps chains stop here
    "method_options": {"specexec": {"max_calls": 8}},
    "threads": 1,
    "seed": 0,
    "stem": "trees",  # output files: STEM.{json,md}, STEM_t1.{json,md}, STEM_budget.png
    "sequoia_budgets": [],  # extra fixed Sequoia budgets in the main table (the hardware-aware goal compares them)
}


def _variants(settings: dict, temperature: float, head: str | None) -> list[tuple[str, str, dict, str | None, int]]:
    """(label, method id, options, verifier, k) of every compared method at this temperature."""
    layers, budget = settings["draft_layers"], int(settings["budget"])
    out = []
    for k in settings["sps_k"]:
        out.append((f"sps:chain k={k}", "sps", {"layers": layers}, None, int(k)))
    base = {"draft_layers": layers, "budget": budget}
    for name in settings["methods"]:
        if name == "sequoia":
            opts, verifier = dict(base), None
            if temperature > 0:
                opts.update(draw="without_replacement")
                verifier = "sequoia_swr"
            out.append((f"sequoia:b={budget}", "sequoia", opts, verifier, budget))
            for b in settings["sequoia_budgets"]:
                out.append((f"sequoia:b={b}", "sequoia", dict(opts, budget=int(b)), verifier, int(b)))
        elif name == "sequoia_hw":
            mb = int(settings["max_budget"])
            opts = dict(base, budget=mb, hardware_aware=True)
            verifier = None
            if temperature > 0:
                opts.update(draw="without_replacement")
                verifier = "sequoia_swr"
            out.append(("sequoia:hardware-aware", "sequoia", opts, verifier, mb))
        else:
            out.append((f"{name}:b={budget}", name, dict(base, **settings["method_options"].get(name, {})), None, budget))
    if head is not None:
        out.append((f"eagle3:eagle2 tree b={budget}", "eagle3", {"head": head, "tree": "dynamic", "tree_size": budget},
                     None, budget))
        for name in ("sequoia", "opt_tree"):
            out.append((f"{name}:b={budget} eagle3 head", name, {"source": "eagle3", "head": head, "budget": budget}, None, budget))
    return out


def _find_head(settings: dict, model) -> str | None:
    if settings["eagle_head"]:
        return settings["eagle_head"]
    try:
        from specplug.kit.heads import default_head_dir, target_fingerprint

        folder = default_head_dir(target_fingerprint(model), "eagle3")
        return str(folder) if folder.exists() else None
    except Exception:
        return None


def _describe_head(head: str | None) -> str:
    """The EAGLE-3 head the eagle rows use, with how it was trained (a smoke-trained head drafts nothing useful)."""
    if head is None:
        return "none found (no EAGLE-3 head for this target in the cache)"
    from specplug.kit.heads import HeadMetadata

    return f"{head}, {HeadMetadata.read(head).training_summary()}"


def _decode(engine, proposer, verifier, ids, k, max_new_tokens, temperature, seed):
    import torch

    from specplug.protocols import SamplingParams

    with torch.inference_mode():
        return engine.generate([ids], proposer, verifier, k=k, max_new_tokens=max_new_tokens,
                               sampling=SamplingParams(temperature=temperature), seed=seed)[0]


def _record(prompt, label, result):
    from specplug.bench.metrics import PromptRecord

    s = result.stats
    return PromptRecord(prompt_id=prompt.id, category=prompt.category, method=label, new_tokens=s.new_tokens, steps=s.steps,
                        drafted=s.drafted, accepted=s.accepted, seconds=s.wall_s, draft_s=s.draft_s, verify_s=s.verify_s,
                        output_ids=list(result.token_ids))


def _meta(settings, title, prompts, temperature, extra) -> dict:
    from specplug.bench.runner import BenchConfig, run_meta

    cfg = BenchConfig(methods=[], model=settings["model"], prompts=f"spec-bench:{settings['per_category']}",
                      k=int(settings["budget"]), max_new_tokens=int(settings["max_new_tokens"]), temperature=temperature,
                      title=title, command="specplug bench --suite benchmarks/suites/trees.toml", threads=settings["threads"])
    return run_meta(cfg, cfg.prompts, prompts, extra)


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    from specplug.bench.documents import write_documents
    from specplug.bench.metrics import BASELINE
    from specplug.bench.prompts import load_prompts, one_per_category_first
    from specplug.bench.results import BenchResults
    from specplug.bench.runner import encode
    from specplug.bench.suites import settings_of
    from specplug.engine import ReferenceEngine
    from specplug.models import load_model
    from specplug.registry import get_registry

    settings = settings_of(suite, quick, DEFAULTS)
    torch.set_num_threads(int(settings["threads"]))
    registry = get_registry()
    model, tokenizer = load_model(settings["model"])
    engine = ReferenceEngine(model, tokenizer)
    prompts, _ = load_prompts(f"spec-bench:{settings['per_category']}")
    prompts = one_per_category_first(prompts)
    if settings["max_prompts"]:
        prompts = prompts[: int(settings["max_prompts"])]
    ids = {p.id: encode(p, tokenizer, True) for p in prompts}
    head = _find_head(settings, model)
    seed, new_tokens = int(settings["seed"]), int(settings["max_new_tokens"])
    docs: dict[str, BenchResults] = {}
    extra: dict[str, Any] = {"kind": "trees", "eagle_head": _describe_head(head)}
    budget_choice: dict[str, Any] = {}

    for temperature in settings["temperatures"]:
        variants = _variants(settings, float(temperature), head)
        proposers = {label: registry.method(mid).build(opts) for label, mid, opts, _, _ in variants}
        first = ids[prompts[0].id]
        _decode(engine, None, None, first, 1, 2, temperature, seed)  # warm-up; sequoia measures its profile here
        for label, mid, opts, verifier, k in variants:
            _decode(engine, proposers[label], verifier, first, k, 2, temperature, seed)
        records = []
        started = time.perf_counter()
        for prompt in prompts:
            base = _decode(engine, None, None, ids[prompt.id], 1, new_tokens, temperature, seed)
            records.append(_record(prompt, BASELINE, base))
            for label, mid, opts, verifier, k in variants:
                result = _decode(engine, proposers[label], verifier, ids[prompt.id], k, new_tokens, temperature, seed)
                records.append(_record(prompt, label, result))
        labels = [BASELINE] + [v[0] for v in variants]
        stem = settings["stem"] if float(temperature) == 0 else f"{settings['stem']}_t{temperature:g}"
        meta = _meta(settings, f"Token trees on SmolLM2-135M, temperature {temperature:g}", prompts, float(temperature),
                     {"dtype": "float32", "device": "cpu", "torch_threads": torch.get_num_threads(),
                      "run_seconds": round(time.perf_counter() - started, 1)})
        results = BenchResults.build(meta, labels, records)
        results.extra = {"kind": "trees", "variants": [{"label": label, "method": mid, "options": opts, "verifier": verifier,
                                                        "k": k} for label, mid, opts, verifier, k in variants]}
        docs[stem] = results
        write_documents({stem: results}, out_dir, quick)  # kept even if a later phase fails
        hw = next((p for label, p in proposers.items() if label == "sequoia:hardware-aware"), None)
        if hw is not None:
            from specplug.protocols import SamplingParams

            plan = hw.plan(SamplingParams(temperature=float(temperature)))
            budget_choice[f"{temperature:g}"] = {
                "picked_budget": plan["budget"], "acceptance": list(plan["profile"].acceptance),
                "draft_call_s": plan["draft_call_s"], "verify_costs_s": plan["verify_costs"],
                "table": list(plan["choice"].rows) if plan["choice"] else None}

    extra.update(_budget_sweep(settings, engine, registry, prompts, ids))
    extra["hardware_aware"] = budget_choice
    extra.update(_projection(settings, budget_choice, extra))
    extra["goals"] = _goals(docs, extra, settings)
    main = docs.get(settings["stem"]) or next(iter(docs.values()))
    main.extra.update(extra, budget_plot=f"{settings['stem']}_budget.png")
    written = write_documents(docs, out_dir, quick)
    png = _plot(extra, out_dir / (settings["stem"] + "_budget" + ("_quick" if quick else "") + ".png"))
    return written + ([png] if png else [])


def _budget_sweep(settings, engine, registry, prompts, ids) -> dict:
    """MAT against node budget (greedy): the tree methods and the sps chain of the same length."""
    chosen = prompts[: int(settings["budget_prompts"])]
    new_tokens, seed = int(settings["max_new_tokens"]), int(settings["seed"])
    sweep: dict[str, dict[str, float]] = {}
    for budget in settings["budgets"]:
        runs = []
        if int(budget) <= int(settings["chain_max"]):  # a chain drafts one token per draft forward: long ones are slow
            runs.append(("sps chain", "sps", {"layers": settings["draft_layers"]}))
        for m in settings["budget_methods"]:
            opts = {"draft_layers": settings["draft_layers"], "budget": int(budget)}
            opts.update(settings["method_options"].get(m, {}))
            runs.append((m, m, opts))
        for label, mid, opts in runs:
            proposer = registry.method(mid).build(opts)
            steps = tokens = 0
            for prompt in chosen:
                result = _decode(engine, proposer, None, ids[prompt.id], int(budget), new_tokens, 0.0, seed)
                steps += result.stats.steps
                tokens += result.stats.new_tokens
            sweep.setdefault(label, {})[str(budget)] = tokens / max(steps, 1)
    return {"mat_by_budget": sweep, "budget_prompts": len(chosen)}


def _projection(settings, budget_choice, extra) -> dict:
    """The optimiser on the H200 cost curve (projected, not measured)."""
    from specplug_sequoia.optimizer import cost_function, parse_cost_curve, pick_budget

    greedy = budget_choice.get("0")
    if not greedy:
        return {}
    curve = parse_cost_curve(settings["h200_curve"])
    costs = greedy["verify_costs_s"]
    cpu_plain = costs[0] if 0 in costs else costs["0"]
    draft_h200 = greedy["draft_call_s"] * curve[0] / cpu_plain  # the draft's per-depth time, scaled as the target's step
    choice = pick_budget(greedy["acceptance"], cost_function(curve), draft_h200, int(settings["max_budget"]))
    mats = extra["mat_by_budget"].get("sequoia", {})
    implied = None
    if mats:
        nearest = min(mats, key=lambda b: abs(int(b) - choice.budget))
        row = next(r for r in choice.rows if r["budget"] == choice.budget)
        implied = mats[nearest] * curve[0] / row["step_s"]
        implied = {"measured_mat_budget": int(nearest), "mat": mats[nearest], "speedup": implied}
    return {"projected_h200": {"label": "projected, not measured", "cost_curve": settings["h200_curve"],
                               "draft_call_s_assumed": draft_h200, "picked_budget": choice.budget,
                               "modelled_speedup": choice.speedup, "speedup_from_measured_mat": implied,
                               "table": list(choice.rows)}}


def _goals(docs, extra, settings) -> list[dict]:
    goals = []
    sweep = extra.get("mat_by_budget", {})
    chain = sweep.get("sps chain", {})
    for method in ("sequoia", "opt_tree") if chain else ():
        mats = sweep.get(method, {})
        both = [b for b in mats if b in chain]
        wins = [b for b in both if mats[b] > chain[b]]
        goals.append({"goal": f"at equal node budget, {method}'s trees reach a higher MAT than the best fixed tree specplug "
                              "had (the sps chain of the same length)",
                      "met": bool(both) and len(wins) == len(both),
                      "figure": ", ".join(f"b={b}: {mats[b]:.2f} vs {chain[b]:.2f}" for b in both)})
    greedy = docs.get(settings["stem"])
    if greedy is not None:
        speed = {m: greedy.summary[m]["overall"].get("speedup") for m in greedy.methods}
        hw = speed.get("sequoia:hardware-aware")
        # Sequoia at fixed budgets over the same draft model (not the rows drafting from the EAGLE-3 head),
        # told apart by the options each row ran with, not by its label
        sources = {v["label"]: (v.get("options") or {}).get("source") for v in (greedy.extra or {}).get("variants", [])}
        fixed = {m: v for m, v in speed.items() if m.startswith("sequoia:b=") and sources.get(m) != "eagle3" and v is not None}
        if hw is not None and fixed:
            best = max(fixed, key=fixed.get)
            picked = extra.get("hardware_aware", {}).get("0", {}).get("picked_budget")
            goals.append({"goal": "the hardware-aware budget gives a speedup at least that of the best fixed budget on this CPU",
                          "met": hw >= fixed[best] - 1e-9,
                          "figure": f"hardware-aware (budget {picked}) {hw:.2f}x vs {best} {fixed[best]:.2f}x; per step "
                                    + "; ".join(_cost_split(greedy, m) for m in ("sequoia:hardware-aware", best, "plain"))})
    return goals


def _cost_split(results, method: str) -> str:
    """``METHOD: draft D ms, verify V ms, overhead O ms, MAT M`` per step (overhead: the rest of the wall time)."""
    from specplug.bench.metrics import BASELINE

    method = BASELINE if method == "plain" else method
    agg = results.summary[method]["overall"]
    get = agg.get if isinstance(agg, dict) else (lambda key: getattr(agg, key))
    steps = max(int(get("steps") or 0), 1)
    draft, verify, total = float(get("draft_s") or 0), float(get("verify_s") or 0), float(get("seconds") or 0)
    mat = get("mat")
    return (f"{method}: draft {1000 * draft / steps:.1f} ms, verify {1000 * verify / steps:.1f} ms, overhead "
            f"{1000 * (total - draft - verify) / steps:.1f} ms" + (f", MAT {mat:.2f}" if mat else ""))


def _plot(extra, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sweep = extra.get("mat_by_budget") or {}
    if not sweep:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, mats in sweep.items():
        budgets = sorted(int(b) for b in mats)
        ax.plot(budgets, [mats[str(b)] for b in budgets], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("node budget (draft tokens per step)")
    ax.set_ylabel("MAT (tokens per target forward)")
    ax.set_title("MAT against node budget, SmolLM2-135M, greedy")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(results, heading: str = "#") -> list[str]:
    """The extra section of trees.md: MAT by budget, verify costs, the budgets picked, goals."""
    from specplug.bench.documents import goal_lines

    extra = results.extra or {}
    out: list[str] = []
    sweep = extra.get("mat_by_budget")
    if sweep and any(sweep.values()):
        budgets = sorted({int(b) for m in sweep.values() for b in m})
        out += [f"{heading}# MAT against node budget (greedy, {extra.get('budget_prompts')} prompts)", "",
                # named, not linked: the site's results page shows the plot itself, and a relative link
                # breaks there (the page is generated into another folder)
                f"Plot: `{extra.get('budget_plot', 'trees_budget.png')}`, beside this page in docs/results.", "",
                "| method | " + " | ".join(f"b={b}" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
        for label, mats in sweep.items():
            out.append(f"| {label} | " + " | ".join(f"{mats[str(b)]:.2f}" if str(b) in mats else "-" for b in budgets) + " |")
        out.append("")
    for temp, choice in (extra.get("hardware_aware") or {}).items():
        costs = choice.get("verify_costs_s") or {}
        out += [f"{heading}# Sequoia's hardware-aware budget, temperature {temp}", "",
                f"Positional acceptance: {', '.join(f'{a:.3f}' for a in choice['acceptance'])}; draft time per depth "
                f"{1000 * choice['draft_call_s']:.1f} ms. Verify cost per tree size measured on this CPU "
                "(one target forward of n nodes plus the root):", "",
                "| nodes | " + " | ".join(str(n) for n in costs) + " |", "|---|" + "---:|" * len(costs),
                "| ms | " + " | ".join(f"{1000 * v:.1f}" for v in costs.values()) + " |", "",
                f"Budget picked: **{choice['picked_budget']}**.", ""]
        if choice.get("table"):
            out += ["| budget | nodes | depth | modelled tokens/step | modelled speedup |", "|---:|---:|---:|---:|---:|"]
            out += [f"| {r['budget']} | {r['nodes']} | {r['depth']} | {r['tokens_per_step']:.2f} | {r['speedup']:.2f}x |"
                    for r in choice["table"]]
            out.append("")
    proj = extra.get("projected_h200")
    if proj:
        implied = proj.get("speedup_from_measured_mat") or {}
        out += [f"{heading}# Projected: H200 cost curve ({proj['label']})", "",
                f"Cost curve {proj['cost_curve']} (tokens:ms, from DEVICE.md); the draft's time per depth assumed "
                f"{1000 * proj['draft_call_s_assumed']:.2f} ms (this CPU's, scaled as the target's one-token step). "
                f"The optimiser picks budget **{proj['picked_budget']}**, modelled speedup {proj['modelled_speedup']:.2f}x"
                + (f"; with the MAT measured here at budget {implied['measured_mat_budget']} ({implied['mat']:.2f}) the "
                   f"projected speedup is {implied['speedup']:.2f}x." if implied else "."), ""]
    out += goal_lines(extra.get("goals") or [], heading)
    out += [f"EAGLE-3 head: {extra.get('eagle_head')}.", ""]
    return out


KIND = BenchKindSpec(id="trees", run=run, render=render, defaults=DEFAULTS)
