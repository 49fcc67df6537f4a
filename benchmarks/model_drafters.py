"""Model drafters (sps, draft_verify, swift) beside plain decoding and pld: reference engine and vLLM.

SmolLM2-135M-Instruct, float32 on the CPU, greedy, Spec-Bench (default: the first 2 prompts of each of
the 13 categories, 26 prompts, first turn, chat template), at most 128 new tokens.

Reference engine (specplug's runner, :func:`specplug.bench.runner.run_bench`, once per k; every run
decodes each prompt plainly and then with every method before the next prompt, so load changes hit
all alike, and speedups are against plain decoding of the same run):

- ``pld`` (min n-gram 1, max 3);
- ``sps:<layers>``: an independent draft made of SmolLM2's own layers (default: 4, 16 and 24 of 30:
  ``0-3``, ``0-7,22-29``, ``0-11,18-29``; see :data:`DEFAULT_DRAFTS`), the same model ``specplug models derive smollm2-135m --layers
  ...`` writes; ``.../v<N>`` with a reduced draft vocabulary of ``N`` ids (default 8192) counted in
  held-out Spec-Bench prompts (never the benchmark's; checked below);
- ``draft_verify`` and ``swift`` (specplug-layerskip) with their default options and, when their
  options have ``vocab_size``, with the reduced vocabulary too. Methods that are not installed are
  skipped with a message (``--methods`` picks the families);
- k = 3, 5, 8 (``--ks``).

Per variant: MAT, acceptance, tokens/s and speedup per category (the runner's tables), and the cost
split: drafting ms per emitted token, ms per target forward (verification), MAT.

vLLM (CPU, ``--vllm``, default on): plain, vLLM's ``ngram`` (prompt_lookup_min 1, max 3) and the
derived drafts through vLLM's native ``draft_model`` (k = 5), each engine in its own process: batch 1
(one prompt at a time, spec-decode counters around each) and the whole set in one batch.

Goals (issue 10): layer-skip acceptance >= 60%; the best model drafter's MAT >= 1.3x pld's (same k,
same run); a model drafter faster than plain decoding (speedup > 1.0) at batch 1 in the reference
engine. The script prints which are met.

Results: ``docs/results/model_drafters.{json,md}`` (the summary: cost split, vLLM, goals) and
``docs/results/model_drafters_k<K>.{json,md}`` (the runner's documents, one per k). Timings depend on
the machine and its load (``uptime`` is recorded); MAT, acceptance and output equality do not.

    python benchmarks/model_drafters.py                 # the full run (hours on 2 CPU cores)
    python benchmarks/model_drafters.py --quick         # 3 prompts, 12 tokens, k=3, one draft
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "specplug-model-drafters/1"
LAYER_SKIP = ("draft_verify", "swift")
FAMILIES = ("pld", "sps", *LAYER_SKIP)
DEFAULT_DRAFTS = ("0-3", "0-7,22-29", "0-11,18-29")
"""4, 16 and 24 of SmolLM2's 30 layers. Measured here (6 Spec-Bench prompts, 40 tokens, teacher-forced top-1
agreement with the target): 4% for 0-3, 10% for 0-7,22-29, 49% for 0-11,18-29, 74% for 0-13,16-29, and 0% for
0,29 / 0-2,29 / 0-6,29 (a last layer without the ones before it): an untrained layer subset of a 135M model
agrees with it only when it keeps most layers."""


# -- variants: one registry entry per (method, options) ---------------------------------------------


class VariantRegistry:
    """The process registry seen through variant names (``sps:0-2_29/v8192`` -> ``sps`` + options), so
    the runner runs one method several times with different options in the same pass."""

    def __init__(self, registry, variants: dict[str, tuple[str, dict]]):
        self.registry = registry
        self.variants = variants
        self.method_sources = {name: registry.method_sources.get(mid) for name, (mid, _) in variants.items()}

    def method(self, name: str):
        method_id, _ = self.variants[name]
        return dataclasses.replace(self.registry.method(method_id), id=name)


def build_variants(families, drafts, vocab_size, registry) -> tuple[dict[str, tuple[str, dict]], list[str]]:
    """``({variant: (method id, options)}, notes about what was skipped)``."""
    from specplug.derive import layers_label, parse_layers
    from specplug.registry import NotRunnableError, UnknownIdError

    variants: dict[str, tuple[str, dict]] = {}
    notes: list[str] = []
    for family in families:
        try:
            spec = registry.method(family)
        except (NotRunnableError, UnknownIdError) as err:
            notes.append(f"skipped {family}: not installed here ({str(err).splitlines()[0]})")
            continue
        if family == "pld":
            variants["pld"] = ("pld", {"min_ngram": 1, "max_ngram": 3})
        elif family == "sps":
            for layers in drafts:
                name = f"sps:{layers_label(parse_layers(layers, 30))}"
                variants[name] = ("sps", {"layers": layers})
                if vocab_size:
                    variants[f"{name}/v{vocab_size}"] = ("sps", {"layers": layers, "vocab_size": vocab_size})
        else:
            variants[family] = (family, {})
            if vocab_size and "vocab_size" in spec.options.model_fields:
                variants[f"{family}/v{vocab_size}"] = (family, {"vocab_size": vocab_size})
            elif vocab_size:
                notes.append(f"{family}: its options have no vocab_size, so it runs with the full vocabulary only")
    return variants, notes


def check_calibration_is_held_out(bench_ids: set[str]) -> str:
    """The reduced vocabulary's calibration prompts must not be benchmark prompts; returns a note."""
    from specplug_draft.vocab import calibration_texts

    _, calib_ids = calibration_texts()
    overlap = bench_ids & set(calib_ids)
    if overlap:
        raise SystemExit(f"calibration prompts overlap the benchmark: {sorted(overlap)[:5]}; use fewer prompts per category")
    return f"reduced-vocabulary calibration: {len(calib_ids)} held-out Spec-Bench prompts, none of the {len(bench_ids)} benchmark prompts"


# -- reference engine ---------------------------------------------------------------------------------


def run_reference(args, prompts, label, variants, model, tokenizer):
    from specplug.bench.runner import BenchConfig, run_bench
    from specplug.registry import get_registry

    registry = VariantRegistry(get_registry(), variants)
    by_k = {}
    for k in args.ks:
        cfg = BenchConfig(
            methods=list(variants), engine="reference", model="smollm2-135m", prompts=label, k=k,
            max_new_tokens=args.max_new_tokens, options={name: opts for name, (_, opts) in variants.items()},
            threads=args.threads, use_cache=not args.no_cache,
            title=f"Reference engine: model drafters (sps, draft_verify, swift) beside pld, k = {k}",
            command="python benchmarks/model_drafters.py" + "".join(f" {a}" for a in sys.argv[1:]),
        )
        print(f"reference engine, k={k}: {len(prompts)} prompts x {1 + len(variants)} methods", file=sys.stderr, flush=True)
        by_k[k] = run_bench(cfg, model=model, tokenizer=tokenizer, registry=registry, prompts=prompts, label=label,
                            show_progress=not args.no_progress)
    return by_k


def cost_rows(by_k) -> list[dict]:
    """Per (k, method): MAT, acceptance, speedup, and where the time went."""
    rows = []
    for k, results in by_k.items():
        plain = results.summary["plain"]["overall"]
        plain_ms = 1000 * plain["seconds"] / max(plain["new_tokens"], 1)
        for method in results.methods:
            o = results.summary[method]["overall"]
            rows.append({
                "k": k, "method": method, "mat": o["mat"], "acceptance": o["acceptance_rate"], "speedup": o["speedup"],
                "tokens_per_s": o["tokens_per_s"], "identical": o.get("identical"), "prompts": o["prompts"],
                "draft_ms_per_token": 1000 * o["draft_s"] / max(o["new_tokens"], 1),
                "verify_ms_per_forward": 1000 * o["verify_s"] / max(o["steps"], 1),
                "ms_per_token": 1000 * o["seconds"] / max(o["new_tokens"], 1),
                "plain_ms_per_token": plain_ms,
            })
    return rows


# -- vLLM -----------------------------------------------------------------------------------------------


def run_vllm(args, token_ids: list[list[int]], drafts) -> dict:
    from specplug.bench.vllm_jobs import VllmJobError, batch1_then_batch
    from specplug.derive import derive_model, layers_label, parse_layers
    from specplug.integrations.vllm.commands import speculative_configs
    from specplug.models import resolve_model

    model = resolve_model("smollm2-135m")
    k = args.vllm_k
    configs = {"plain": None, "ngram": {"method": "ngram", "num_speculative_tokens": k, "prompt_lookup_min": 1, "prompt_lookup_max": 3}}
    for layers in drafts:
        folder = derive_model("smollm2-135m", layers)  # cached after the first run
        configs[f"draft_model:{layers_label(parse_layers(layers, 30))}"] = speculative_configs("sps", k, draft_model=str(folder))["native"]["speculative_config"]
    longest = max(len(t) for t in token_ids) + args.max_new_tokens + k + 8
    prompts = [{"id": str(i), "category": "", "token_ids": t} for i, t in enumerate(token_ids)]
    out: dict = {"k": k, "configs": configs, "engines": {}}
    for name, spec in configs.items():
        print(f"vLLM: {name} ...", file=sys.stderr, flush=True)
        try:
            out["engines"][name] = batch1_then_batch(str(model), prompts, args.max_new_tokens, speculative_config=spec,
                                                     max_model_len=min(4096, longest))
        except VllmJobError as err:
            raise SystemExit(f"vLLM engine {name} failed: {err}") from None
    return summarize_vllm(out)


def summarize_vllm(raw: dict) -> dict:
    engines = raw["engines"]
    plain = engines["plain"]
    plain_single_s = sum(r["seconds"] for r in plain["batch1"])
    rows = []
    for name, e in engines.items():
        tokens = sum(len(r["output_ids"]) for r in e["batch1"])
        accepted = sum(r["accepted"] for r in e["batch1"])
        drafted = sum(r["drafted"] for r in e["batch1"])
        seconds = sum(r["seconds"] for r in e["batch1"])
        b = e["batch"]
        b_tokens = sum(len(o) for o in b["outputs"])
        rows.append({
            "engine": name,
            "batch1_mat": tokens / max(tokens - accepted, 1),
            "batch1_acceptance": accepted / drafted if drafted else None,
            "batch1_tokens_per_s": tokens / seconds if seconds else None,
            "batch1_speedup": plain_single_s / seconds if seconds else None,  # same tokens when outputs are identical
            "batch1_identical": sum(r["output_ids"] == p["output_ids"] for r, p in zip(e["batch1"], plain["batch1"])),
            "batch_mat": b_tokens / max(b_tokens - b["accepted"], 1) if name != "plain" else 1.0,
            "batch_acceptance": b["accepted"] / b["drafted"] if b["drafted"] else None,
            "batch_tokens_per_s": b_tokens / b["seconds"] if b["seconds"] else None,
            "batch_speedup": plain["batch"]["seconds"] / b["seconds"] if b["seconds"] else None,
            "batch_identical": sum(o == p for o, p in zip(b["outputs"], plain["batch"]["outputs"])),
            "prompts": len(e["batch1"]),
        })
    per_prompt = {name: {"batch1": [{k: v for k, v in r.items() if k != "output_ids"} for r in e["batch1"]],
                         "batch": {k: v for k, v in e["batch"].items() if k != "outputs"}}
                  for name, e in engines.items()}  # the sums behind the rows, for readers who re-aggregate
    return {"k": raw["k"], "configs": raw["configs"], "vllm_version": plain.get("vllm_version"), "rows": rows,
            "per_prompt": per_prompt}


# -- goals and report ------------------------------------------------------------------------------------


def goals(rows: list[dict]) -> list[dict]:
    def family(method: str) -> str:
        return method.split(":")[0].split("/")[0]

    out = []
    skip = [r for r in rows if family(r["method"]) in LAYER_SKIP and r["acceptance"] is not None]
    if skip:
        best = max(skip, key=lambda r: r["acceptance"])
        out.append({"goal": "layer-skip acceptance >= 60%", "met": best["acceptance"] >= 0.6,
                    "figure": f"best {best['method']} k={best['k']}: {best['acceptance']:.1%}"})
    else:
        out.append({"goal": "layer-skip acceptance >= 60%", "met": None, "figure": "no layer-skip method ran"})
    model_rows = [r for r in rows if family(r["method"]) in ("sps", *LAYER_SKIP)]
    ratios = []
    for r in model_rows:
        pld = next((p for p in rows if p["method"] == "pld" and p["k"] == r["k"]), None)
        if pld and pld["mat"]:
            ratios.append((r["mat"] / pld["mat"], r, pld))
    if ratios:
        ratio, r, pld = max(ratios, key=lambda x: x[0])
        out.append({"goal": "best model drafter MAT >= 1.3x pld's", "met": ratio >= 1.3,
                    "figure": f"{r['method']} k={r['k']}: MAT {r['mat']:.2f} vs pld {pld['mat']:.2f} ({ratio:.2f}x)"})
    if model_rows:
        best = max(model_rows, key=lambda r: r["speedup"] or 0)
        out.append({"goal": "speedup > 1.0 at batch 1 (reference engine)", "met": (best["speedup"] or 0) > 1.0,
                    "figure": f"best {best['method']} k={best['k']}: {best['speedup']:.2f}x (MAT {best['mat']:.2f}; "
                              f"draft {best['draft_ms_per_token']:.1f} ms/token, verify {best['verify_ms_per_forward']:.1f} ms/forward, "
                              f"plain {best['plain_ms_per_token']:.1f} ms/token)"})
    return out


def render(doc: dict) -> str:
    def f(x, kind=""):
        if x is None:
            return "-"
        return f"{x:.1%}" if kind == "pct" else f"{x:.2f}x" if kind == "x" else f"{x:.2f}"

    meta = doc["meta"]
    out = [f"# {meta['title']}", "",
           f"{meta['model']}, float32, {meta['device']}, greedy; {meta['prompts']} ({meta['num_prompts']} prompts); at most "
           f"{meta['max_new_tokens']} new tokens; {meta['hardware']}; load average at start {meta['load_at_start']}, at end "
           f"{meta['load_at_end']}; {meta['date']}.", "",
           "Command:", "", "```bash", meta["command"], "```", ""]
    out += [f"- {n}" for n in meta.get("notes", [])] + [""]
    out += ["## Goals", ""] + [f"- {'met' if g['met'] else 'not met' if g['met'] is not None else 'not measured'}: {g['goal']} ({g['figure']})"
                               for g in doc["goals"]] + [""]
    out += ["## Reference engine: MAT and where the time goes", "",
            "Draft = the proposer's time per emitted token (the draft model's forwards); verify = the time of one target "
            "forward with its draft, per forward; speedup = tokens/s over plain decoding in the same run. Per-category "
            "tables: `model_drafters_k<K>.md`.", "",
            "| k | method | MAT | acceptance | speedup | ms/token | draft ms/token | verify ms/forward | plain ms/token | same output as plain |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["reference"]:
        same = "-" if r["identical"] is None else f"{r['identical']}/{r['prompts']}"
        out.append(f"| {r['k']} | {r['method']} | {f(r['mat'])} | {f(r['acceptance'], 'pct')} | {f(r['speedup'], 'x')} | "
                   f"{r['ms_per_token']:.1f} | {r['draft_ms_per_token']:.1f} | {r['verify_ms_per_forward']:.1f} | {r['plain_ms_per_token']:.1f} | {same} |")
    out.append("")
    vllm = doc.get("vllm")
    if vllm:
        out += [f"## vLLM {vllm.get('vllm_version', '')} (CPU): derived drafts through draft_model beside ngram, k = {vllm['k']}", "",
                "| engine | batch-1 MAT | acceptance | tokens/s | speedup | same as plain | whole-batch MAT | tokens/s | speedup | same as plain |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in vllm["rows"]:
            out.append(f"| {r['engine']} | {f(r['batch1_mat'])} | {f(r['batch1_acceptance'], 'pct')} | {f(r['batch1_tokens_per_s'])} | "
                       f"{f(r['batch1_speedup'], 'x')} | {r['batch1_identical']}/{r['prompts']} | {f(r['batch_mat'])} | "
                       f"{f(r['batch_tokens_per_s'])} | {f(r['batch_speedup'], 'x')} | {r['batch_identical']}/{r['prompts']} |")
        out += ["", "Configs: " + "; ".join(f"`{n}`: `{json.dumps(c)}`" for n, c in vllm["configs"].items() if c), ""]
    return "\n".join(out)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 prompts, 12 new tokens, k=3, one draft (a smoke run)")
    parser.add_argument("--methods", default=",".join(FAMILIES), help=f"families to run (of {','.join(FAMILIES)})")
    parser.add_argument("--drafts", default=";".join(DEFAULT_DRAFTS), help="sps drafts: layer specs separated by ';'")
    parser.add_argument("--vocab-size", type=int, default=8192, help="reduced draft vocabulary (0: full vocabulary only)")
    parser.add_argument("--ks", default="3,5,8")
    parser.add_argument("--per-category", type=int, default=2)
    parser.add_argument("--max-prompts", type=int, default=None, help="at most this many prompts (one per category first)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=True, help="also run the vLLM part")
    parser.add_argument("--vllm-k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="do not reuse finished prompts from the runner's cache")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default docs/results; --quick: the cache)")
    parser.add_argument("--note", action="append", default=[],
                        help="a condition of this run to print on the results page (for example, that the cached "
                             "reference prompts were decoded under load); repeatable")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_category, args.max_prompts, args.max_new_tokens = 1, args.max_prompts or 3, min(args.max_new_tokens, 12)
        args.ks = "3"
        args.drafts = args.drafts if args.drafts != ";".join(DEFAULT_DRAFTS) else "0-3"
        args.vllm_k = 3
    args.ks = [int(k) for k in str(args.ks).split(",") if k.strip()]
    families = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {','.join(FAMILIES)}")
    drafts = [d.strip() for d in args.drafts.split(";") if d.strip()]

    import torch

    from specplug.bench.prompts import load_prompts
    from specplug.bench.runner import encode, hardware
    from specplug.models import cache_dir, load_model
    from specplug.registry import get_registry

    torch.set_grad_enabled(False)
    load_start = _load()
    prompts, label = load_prompts(f"spec-bench:{args.per_category}")
    rank: dict[str, int] = {}
    order = []
    for p in prompts:
        rank[p.category] = rank.get(p.category, 0) + 1
        order.append((rank[p.category], len(order), p))
    prompts = [p for _, _, p in sorted(order, key=lambda x: x[:2])]  # one per category first
    if args.max_prompts:
        prompts = prompts[: args.max_prompts]
        label = f"{label}, first {len(prompts)} (one per category first)"
    variants, notes = build_variants(families, drafts, args.vocab_size, get_registry())
    notes = list(args.note) + notes
    for note in notes:
        print(note, file=sys.stderr)
    if any(opts.get("vocab_size") for _, opts in variants.values()):
        notes.append(check_calibration_is_held_out({p.id for p in prompts}))
    model, tokenizer = load_model("smollm2-135m")
    started = time.perf_counter()
    by_k = run_reference(args, prompts, label, variants, model, tokenizer)
    rows = cost_rows(by_k)
    vllm = None
    if args.vllm and "sps" in families:
        vllm = run_vllm(args, [encode(p, tokenizer, True) for p in prompts], drafts)
    doc = {
        "schema": SCHEMA,
        "meta": {
            "title": "Model drafters on SmolLM2-135M: sps (derived drafts), draft_verify, swift, beside pld",
            "model": "smollm2-135m", "device": "cpu", "prompts": label, "num_prompts": len(prompts),
            "prompt_ids": [p.id for p in prompts], "max_new_tokens": args.max_new_tokens, "ks": args.ks,
            "variants": {n: {"method": m, "options": o} for n, (m, o) in variants.items()},
            "hardware": hardware(), "load_at_start": load_start, "load_at_end": _load(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run_seconds": round(time.perf_counter() - started, 1),
            "torch_threads": args.threads,
            "command": "python benchmarks/model_drafters.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
            "notes": notes,
        },
        "reference": rows,
        "vllm": vllm,
        "goals": goals(rows),
    }
    out_dir = args.out or (cache_dir() / "bench" / "model_drafters_quick" if args.quick else ROOT / "docs" / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    from specplug.bench.results import render_markdown

    for k, results in by_k.items():
        (out_dir / f"model_drafters_k{k}.json").write_text(results.dumps(), encoding="utf-8")
        (out_dir / f"model_drafters_k{k}.md").write_text(render_markdown(results), encoding="utf-8")
    (out_dir / "model_drafters.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    report = render(doc)
    (out_dir / "model_drafters.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    print(f"wrote {out_dir}/model_drafters.{{json,md}} and model_drafters_k*.{{json,md}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
