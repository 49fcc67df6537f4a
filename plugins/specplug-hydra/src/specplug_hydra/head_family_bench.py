"""The head family (Hydra, MLP speculator, Blockwise, ...) beside pld, in the reference engine.

SmolLM2-135M-Instruct in float32 on the CPU, the first ``per_category`` Spec-Bench prompts of every
category (first turn, chat template; 2 per category = 26 prompts), greedy, at most
``max_new_tokens`` new tokens, batch 1: specplug's bench runner runs every method right after plain
decoding on the same prompt, and reports MAT, acceptance and speedup per category, with the cost
split (drafting, verification, the rest of the engine loop). Each head drafts its own paper's shape:
``hydra`` its sparse tree (each level given the parent's path), ``mlp_speculator`` its top-k
candidate sequences merged into a tree, ``blockwise`` a chain of its heads' top tokens, ``hass`` EAGLE-2's
dynamic tree (its head is an EAGLE head), ``redrafter`` its beam search merged into a tree, ``falcon``
its block tree (k depths per drafter forward), ``amphista`` Medusa's kind of sparse tree; ``pld``
a chain of ``k``. vLLM 0.32 hosts none of these heads (it refuses ``mlp_speculator`` and never had the
others), so this suite is the reference engine's only.

Heads are the ones ``specplug train <id>`` wrote for the target into specplug's cache (or
``heads_dir/<id>``); methods are built by id from the registry (a method whose plugin is not
installed is skipped with a note). A table of training cost (data tokens, tokens seen, wall-clock,
device, held-out top-1 per draft position) comes from each head's metadata. ``--quick``: 2 categories
x 1 prompt, 24 tokens, random heads where none is trained.

Suite kind ``head_family`` (``benchmarks/suites/head_family.toml``), registered by specplug-hydra.
Wall-clock figures on a shared machine are noisy: the results record the load average before and
after; MAT, acceptance and output identity do not depend on it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND", "DEFAULTS"]

#: head method -> its drafting options in this suite (besides ``head``)
HEAD_OPTIONS = {
    "hydra": lambda a: {"tree": "sparse", "tree_size": a.tree_size},
    "mlp_speculator": lambda a: {"tree": "candidates", "tree_size": a.tree_size},
    "blockwise": lambda a: {"tree_size": a.k},
    "hass": lambda a: {"tree": "dynamic", "tree_size": a.tree_size, "depth": 5, "top_k": 4},
    "redrafter": lambda a: {"beam_width": 4, "tree_size": a.tree_size},
    "falcon": lambda a: {"tree": "falcon", "tree_size": a.tree_size},
    "amphista": lambda a: {"tree": "sparse", "tree_size": a.tree_size},
}
DEFAULTS = {"model": "smollm2-135m", "heads_dir": None, "per_category": 2, "max_new_tokens": 128, "k": 5,
            "tree_size": 16, "heads": ["hydra", "mlp_speculator", "blockwise", "hass", "redrafter"],
            "baselines": ["pld"], "timed": True}


def find_heads(args, model, tmp: Path) -> tuple[dict[str, dict], list[str]]:
    """``({method: {"folder", "trained", "metadata"}}, notes)``; random heads for --quick when none is trained."""
    from specplug.kit.heads import HeadMetadata, default_head_dir, save_random_head, target_fingerprint
    from specplug.registry import get_registry

    registry = get_registry()
    found, notes = {}, []
    for method in args.heads:
        if method not in HEAD_OPTIONS:
            raise SystemExit(f"heads: unknown {method!r}; this suite knows {', '.join(HEAD_OPTIONS)}")
        if method not in registry.methods or method not in registry.objectives:
            notes.append(f"{method}: not installed (pip install specplug-{method.replace('_', '-')}); skipped")
            continue
        folder = Path(args.heads_dir) / method if args.heads_dir else default_head_dir(target_fingerprint(model), method)
        trained = folder.exists()
        if not trained:
            if not args.quick:
                raise SystemExit(f"no trained {method} head at {folder}; make it with `specplug train data --model "
                                 f"{args.model}` then `specplug train {method} --model {args.model}` (or run --quick)")
            folder = save_random_head(method, model, tmp / method)
            if method == "hass":  # HASS drafts with EAGLE-2 on the head's eagle/ export
                from specplug.kit.heads import load_head

                head, meta = load_head(folder, model)
                export_eagle(head, model, folder / "eagle", meta)
        found[method] = {"folder": str(folder), "trained": trained, "metadata": HeadMetadata.read(folder)}
    return found, notes


def export_eagle(head, model, folder: Path, meta) -> None:
    """The eagle/ export ``specplug train hass`` writes beside a HASS head (through the objective's
    ``export``, so this module imports no other plugin)."""
    from specplug.registry import get_registry

    objective = get_registry().objectives["hass"].factory(SimpleNamespace(options={}, eval_positions=5))
    objective._target = model
    objective.export(head, folder.parent, meta, None)


def head_identity(heads: dict[str, dict]) -> str:
    """A hash of the head files (size and mtime), so cached results of an older head are never reused."""
    parts = []
    for method, info in sorted(heads.items()):
        for path in sorted(Path(info["folder"]).iterdir()):
            stat = path.stat()
            parts.append(f"{method}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def training_cost(info: dict) -> dict:
    """The head's training cost and held-out accuracy, from its metadata."""
    meta = info["metadata"]
    t = meta.training or {}
    held = meta.held_out_accuracy
    return {"trained": info["trained"], "folder": info["folder"], "data_manifest_id": meta.data_manifest_id,
            "data_tokens": t.get("data_tokens"), "tokens_seen": t.get("tokens_seen"), "steps": t.get("steps"),
            "seconds": t.get("seconds"), "budget": t.get("budget"), "device": t.get("device", "cpu"),
            "held_out_top1": [round(a, 3) if a is not None else None for a in held],
            "settings": {k: v for k, v in (t.get("settings") or {}).items() if k not in ("data", "target")}}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.documents import write_documents
    from specplug.bench.results import BenchResults
    from specplug.bench.suites import settings_of

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), quick=quick, command=suite.command(quick))
    import torch

    torch.set_num_threads(1)
    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import BenchConfig, run_bench
    from specplug.models import cache_dir, load_model
    from specplug.registry import get_registry

    load_before = os.getloadavg()
    model, tokenizer = load_model(args.model)
    prompts, _ = load_prompts(f"spec-bench:{args.per_category}")
    if quick:  # the first two categories
        cats = list(dict.fromkeys(p.category for p in prompts))[:2]
        prompts = [p for p in prompts if p.category in cats]
    label = f"spec-bench:{args.per_category}" + (" (first 2 categories)" if quick else "")
    with tempfile.TemporaryDirectory(prefix="specplug-head-family-") as tmp:
        heads, notes = find_heads(args, model, Path(tmp))
        baselines = [m for m in args.baselines if m in get_registry().methods]
        notes += [f"{m}: not installed; skipped" for m in args.baselines if m not in baselines]
        if not args.timed:
            notes.append("run outside the timing lock (timed = false): speedup and tokens/s are NOT valid figures; "
                         "MAT, acceptance and output identity are")
        options = {"pld": {"min_ngram": 1, "max_ngram": 3, "num_pred_tokens": args.k}}
        options.update({m: {"head": h["folder"], **HEAD_OPTIONS[m](args)} for m, h in heads.items()})
        cfg = BenchConfig(
            methods=baselines + list(heads), engine="reference", model=args.model, prompts=label,
            k=max(args.k, args.tree_size), max_new_tokens=args.max_new_tokens, options=options, threads=1,
            use_cache=not quick, cache_dir=cache_dir() / "bench" / "head_family" / head_identity(heads),
            title="The head family (Hydra, MLP speculator, Blockwise, HASS, ReDrafter, FALCON, Amphista) beside pld: reference engine, batch 1",
            command=args.command)
        results = run_bench(cfg, model=model, tokenizer=tokenizer, prompts=prompts, label=label)
        data = results.to_json()
        cost = {}
        for method in results.methods:
            recs = [r for r in data["records"] if r["method"] == method]
            total = sum(r["seconds"] for r in recs)
            draft, verify = sum(r["draft_s"] for r in recs), sum(r["verify_s"] for r in recs)
            steps = max(1, sum(r["steps"] for r in recs))
            cost[method] = {"seconds": total, "draft_s": draft, "verify_s": verify, "overhead_s": total - draft - verify,
                            "ms_per_step": {"draft": 1e3 * draft / steps, "verify": 1e3 * verify / steps,
                                            "overhead": 1e3 * (total - draft - verify) / steps}}
        extra = {"kind": "head_family", "training": {m: training_cost(h) for m, h in heads.items()}, "cost": cost,
                 "notes": notes, "options": options,
                 "run": {"per_category": args.per_category, "k": args.k, "tree_size": args.tree_size, "quick": quick,
                         "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         "load_before": [round(x, 2) for x in load_before],
                         "load_after": [round(x, 2) for x in os.getloadavg()]}}
    doc = BenchResults(data["meta"], list(data["methods"]), data["summary"], list(data.get("records", [])),
                       json.loads(json.dumps(extra, default=str)))
    return write_documents({"head_family": doc}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = []
    if extra.get("training"):
        out += [f"{heading}# Training cost", "", "Each head's training as its metadata records it (CPU, 1 thread unless "
                "stated): data tokens in the training set, tokens seen in training, wall-clock, held-out top-1 by draft position.",
                "", "| head | trained | data tokens | tokens seen | steps | wall-clock s | device | held-out top-1 |",
                "|---|---|---:|---:|---:|---:|---|---|"]
        for method, t in extra["training"].items():
            top1 = ", ".join(f"{a:.2f}" for a in t["held_out_top1"] if a is not None) or "-"
            out.append(f"| {method} | {'yes' if t['trained'] else 'no (random weights)'} | {t['data_tokens'] or '-'} | "
                       f"{t['tokens_seen'] or '-'} | {t['steps'] or '-'} | {fmt(t['seconds'])} | {t['device']} | {top1} |")
        out.append("")
    if extra.get("cost"):
        out += [f"{heading}# Cost split", "", "Milliseconds per target step, summed over the prompts: drafting (proposer "
                "and head), verification (target forward and verifier), overhead (the rest of the engine loop).", "",
                "| method | draft | verify | overhead | total s |", "|---|---:|---:|---:|---:|"]
        for method, c in extra["cost"].items():
            ms = c["ms_per_step"]
            out.append(f"| {method} | {ms['draft']:.1f} | {ms['verify']:.1f} | {ms['overhead']:.1f} | {c['seconds']:.1f} |")
        out.append("")
    if extra.get("notes"):
        out += [f"{heading}# Notes", ""] + [f"- {n}" for n in extra["notes"]] + [""]
    return out


KIND = BenchKindSpec(id="head_family", run=run, render=render, defaults=DEFAULTS)
