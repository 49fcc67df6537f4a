"""The suite kind ``model_drafters``: model drafters (sps, draft_verify, swift) beside plain decoding and pld,
in the reference engine and vLLM.

Suite kind ``model_drafters`` (``benchmarks/suites/model_drafters.toml``). SmolLM2-135M-Instruct,
float32 on the CPU, greedy, Spec-Bench (``per_category`` prompts of each of the 13 categories, one per
category first, first turn, chat template), at most ``max_new_tokens`` new tokens.

Reference engine (:func:`specplug.bench.runner.run_bench`, once per k in ``ks``; every run decodes each
prompt plainly and then with every method before the next prompt, so load changes hit all alike):

- ``pld`` (min n-gram 1, max 3);
- ``sps:<layers>``: an independent draft made of SmolLM2's own layers (``drafts``; default 4, 16 and
  24 of 30 layers, see :data:`DEFAULT_DRAFTS`), the model ``specplug models derive`` writes;
  ``.../v<N>`` with a reduced draft vocabulary of ``vocab_size`` ids counted on held-out Spec-Bench
  prompts (never the benchmark's; checked);
- ``draft_verify`` and ``swift`` (specplug-layerskip), default options, and with the reduced
  vocabulary where their options have ``vocab_size``. Every method is built by id from the registry
  (this plugin never imports specplug-layerskip); families not installed are skipped with a note.

vLLM (``vllm = true``): plain, vLLM's ``ngram`` (as ``pld@native``) and the derived drafts through
vLLM's native ``draft_model`` (as ``sps:<layers>@native``), k = ``vllm_k``, each engine in its own
process (:func:`specplug.integrations.vllm.jobs.batch1_then_batch`): every prompt alone, then all in one batch.

Documents: ``model_drafters_k<K>.json`` per k (extra: the cost split per method, the goals, the
notes) and ``model_drafters_vllm.json`` (batch-1 records; extra: the whole-batch figures).
Goals (issue 10): layer-skip acceptance >= 60%; the best model drafter's MAT >= 1.3x pld's (same k,
same run); a model drafter faster than plain decoding at batch 1 in the reference engine.
"""


from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

LEGACY_SCHEMA = "specplug-model-drafters/1"
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
    from specplug.models.derive import layers_label, parse_layers
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
            threads=args.threads, use_cache=args.use_cache,
            title=f"Reference engine: model drafters (sps, draft_verify, swift) beside pld, k = {k}",
            command=args.command,
        )
        print(f"reference engine, k={k}: {len(prompts)} prompts x {1 + len(variants)} methods", file=sys.stderr, flush=True)
        by_k[k] = run_bench(cfg, model=model, tokenizer=tokenizer, registry=registry, prompts=prompts, label=label,
                            show_progress=args.progress)
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


def run_vllm(args, token_ids: list[dict], drafts) -> dict:
    from specplug.integrations.vllm.jobs import VllmJobError, batch1_then_batch
    from specplug.models.derive import derive_model, layers_label, parse_layers
    from specplug.integrations.vllm.commands import speculative_configs
    from specplug.models import resolve_model

    model = resolve_model("smollm2-135m")
    k = args.vllm_k
    configs = {"plain": None, "ngram": {"method": "ngram", "num_speculative_tokens": k, "prompt_lookup_min": 1, "prompt_lookup_max": 3}}
    for layers in drafts:
        folder = derive_model("smollm2-135m", layers)  # cached after the first run
        configs[f"draft_model:{layers_label(parse_layers(layers, 30))}"] = speculative_configs("sps", k, draft_model=str(folder))["native"]["speculative_config"]
    longest = max(len(t["token_ids"]) for t in token_ids) + args.max_new_tokens + k + 8
    prompts = token_ids  # {"id", "category", "token_ids"} each
    out: dict = {"k": k, "configs": configs, "engines": {}}
    for name, spec in configs.items():
        print(f"vLLM: {name} ...", file=sys.stderr, flush=True)
        try:
            out["engines"][name] = batch1_then_batch(str(model), prompts, args.max_new_tokens, speculative_config=spec,
                                                     max_model_len=min(4096, longest))
        except VllmJobError as err:
            raise SystemExit(f"vLLM engine {name} failed: {err}") from None
    return out


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



# -- documents -------------------------------------------------------------------------------------------

#: vLLM engine name -> method name in the documents (``@native``: vLLM's own implementation)
def vllm_method(engine: str) -> str:
    if engine == "ngram":
        return "pld@native"
    if engine.startswith("draft_model:"):
        return f"sps:{engine.split(':', 1)[1]}@native"
    return engine


def reference_documents(by_k: dict, rows: list[dict], goals_: list[dict], run: dict) -> dict:
    """``{"model_drafters_k<K>": BenchResults}``: the runner's document per k with the cost split (and, on
    the first k's, the goals of the whole run) in ``extra``."""
    out = {}
    for n, (k, results) in enumerate(by_k.items()):
        results.extra = {"kind": "model_drafters", "cost": [r for r in rows if r["k"] == k],
                         "goals": goals_ if n == 0 else [], "run": run}
        out[f"model_drafters_k{k}"] = results
    return out


def vllm_document(vllm: dict, meta: dict, prompts: list[dict]):
    """``model_drafters_vllm``: batch-1 records per engine (``vllm["engines"]``, each with ``batch1`` rows and
    ``batch`` sums; output ids when the run has them) and the aggregated rows in ``extra``."""
    from specplug.bench.metrics import PromptRecord
    from specplug.bench.results import BenchResults

    rows = vllm.get("rows") or summarize_vllm(vllm)["rows"]
    engines = vllm.get("engines") or vllm.get("per_prompt")
    methods = [vllm_method(r["engine"]) for r in rows]
    extra = {"kind": "model_drafters_vllm", "configs": vllm["configs"], "rows": rows}
    if not engines:  # an old file with the aggregated rows only
        per = {vllm_method(r["engine"]): {"overall": aggregate_json(
            prompts=r["prompts"], mat=r["batch1_mat"], acceptance_rate=r["batch1_acceptance"],
            tokens_per_s=r["batch1_tokens_per_s"], speedup=r["batch1_speedup"],
            identical=None if r["engine"] == "plain" else r["batch1_identical"])} for r in rows}
        return summary_doc(meta, per, extra)
    by_index = {str(i): p for i, p in enumerate(prompts)}
    records = []
    for engine, e in engines.items():
        for row in e["batch1"]:
            prompt = by_index.get(row["prompt_id"]) or {"id": row["prompt_id"], "category": row.get("category", "")}
            records.append(PromptRecord(prompt_id=prompt["id"], category=prompt["category"] or row.get("category", ""),
                                        method=vllm_method(engine), new_tokens=row["new_tokens"], steps=row["steps"],
                                        drafted=row["drafted"], accepted=row["accepted"], seconds=row["seconds"],
                                        output_ids=list(row.get("output_ids", []))))
    extra["batch"] = {vllm_method(n): {k: v for k, v in e["batch"].items() if k != "outputs"} for n, e in engines.items()}
    results = BenchResults.build(meta, methods, records)
    if not any("output_ids" in row for e in engines.values() for row in e["batch1"]):
        # no outputs to compare: identity comes from the run's own rows, not from empty id lists
        for r in rows:
            s = results.summary[vllm_method(r["engine"])]
            s["overall"]["identical"] = None if r["engine"] == "plain" else r["batch1_identical"]
            for agg in s["categories"].values():
                agg["identical"] = None
    results.extra = extra
    return results


def convert(legacy: dict, path: Path) -> dict:
    """The documents of a ``specplug-model-drafters/1`` file: its ``model_drafters_k<K>.json`` siblings
    gain the cost split and goals, and its ``vllm`` section (when not null) becomes ``model_drafters_vllm``."""
    from specplug.bench.results import load_results

    meta = legacy["meta"]
    run = {key: meta[key] for key in ("variants", "load_at_start", "load_at_end", "run_seconds", "torch_threads",
                                     "command", "notes") if key in meta}
    by_k = {}
    for k in meta["ks"]:
        sibling = path.parent / f"model_drafters_k{k}.json"
        results = load_results(sibling)
        if results is None:
            raise ValueError(f"{path}: needs {sibling.name} (the reference run of k={k}) beside it")
        by_k[k] = results
    out = reference_documents(by_k, legacy["reference"], legacy["goals"], run)
    if legacy.get("vllm"):
        first = by_k[meta["ks"][0]]
        categories = {r["prompt_id"]: r["category"] for r in first.records}
        prompts = [{"id": pid, "category": categories.get(pid, "")} for pid in meta["prompt_ids"]]
        out["model_drafters_vllm"] = vllm_document(legacy["vllm"], vllm_meta(legacy["vllm"], meta, first.meta), prompts)
    return out


def vllm_meta(vllm: dict, meta: dict, reference_meta: dict) -> dict:
    return {"title": f"vLLM (CPU): derived drafts through draft_model beside ngram, k = {vllm['k']}",
            "model": meta["model"], "engine": "vllm", "prompts": meta["prompts"], "num_prompts": meta["num_prompts"],
            "categories": reference_meta.get("categories"), "k": vllm["k"], "max_new_tokens": meta["max_new_tokens"],
            "temperature": 0.0, "dtype": "float32", "device": "cpu", "hardware": meta["hardware"], "date": meta["date"],
            "vllm_version": vllm.get("vllm_version"), "command": meta["command"]}


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    if extra["kind"] == "model_drafters_vllm":
        out = [f"{heading}# Batch 1 and the whole set in one batch", "",
               "| engine | batch-1 MAT | acceptance | tokens/s | speedup | same as plain | whole-batch MAT | tokens/s | speedup | same as plain |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in extra["rows"]:
            out.append(f"| {vllm_method(r['engine'])} | {fmt(r['batch1_mat'])} | {fmt(r['batch1_acceptance'], 'pct')} | "
                       f"{fmt(r['batch1_tokens_per_s'])} | {fmt(r['batch1_speedup'], 'x')} | {r['batch1_identical']}/{r['prompts']} | "
                       f"{fmt(r['batch_mat'])} | {fmt(r['batch_tokens_per_s'])} | {fmt(r['batch_speedup'], 'x')} | "
                       f"{r['batch_identical']}/{r['prompts']} |")
        return out + ["", "Configs: " + "; ".join(f"`{n}`: `{json.dumps(c)}`" for n, c in extra["configs"].items() if c), ""]
    run = extra.get("run", {})
    out = [f"- {n}" for n in run.get("notes", [])]
    if run.get("load_at_start"):
        out.append(f"- load average at start {run['load_at_start']}, at end {run.get('load_at_end', '?')}")
    out += [""] + goal_lines(extra.get("goals", []), heading)
    out += [f"{heading}# Where the time goes", "",
            "Draft = the proposer's time per emitted token (the draft model's forwards); verify = the time of one target "
            "forward with its draft, per forward; speedup = tokens/s over plain decoding in the same run.", "",
            "| method | MAT | speedup | ms/token | draft ms/token | verify ms/forward | plain ms/token |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in extra.get("cost", []):
        out.append(f"| {r['method']} | {fmt(r['mat'])} | {fmt(r['speedup'], 'x')} | {r['ms_per_token']:.1f} | "
                   f"{r['draft_ms_per_token']:.1f} | {r['verify_ms_per_forward']:.1f} | {r['plain_ms_per_token']:.1f} |")
    return out + [""]


# -- the suite runner --------------------------------------------------------------------------------------

DEFAULTS = {"methods": list(FAMILIES), "drafts": list(DEFAULT_DRAFTS), "vocab_size": 8192, "ks": [3, 5, 8],
            "per_category": 2, "max_prompts": None, "max_new_tokens": 128, "vllm": True, "vllm_k": 5, "threads": 1,
            "use_cache": True, "progress": True, "notes": []}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    """Decoding only: gradients off for the run, and the caller's grad mode left as it was."""
    import torch

    with torch.no_grad():
        return _run(suite, quick, out_dir)


def _run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.documents import write_documents
    from specplug.bench.suites import settings_of

    settings = settings_of(suite, quick, DEFAULTS)
    args = SimpleNamespace(**settings, command=suite.command(quick))
    families = list(args.methods)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"{suite.path}: unknown methods {sorted(unknown)}; choose from {','.join(FAMILIES)}")

    from specplug.bench.prompts import load_prompts, one_per_category_first
    from specplug.bench.runner import encode, hardware
    from specplug.models import load_model
    from specplug.registry import get_registry

    load_start = _load()
    prompts, label = load_prompts(f"spec-bench:{args.per_category}")
    prompts = one_per_category_first(prompts)
    if args.max_prompts:
        prompts = prompts[: args.max_prompts]
        label = f"{label}, first {len(prompts)} (one per category first)"
    variants, notes = build_variants(families, args.drafts, args.vocab_size, get_registry())
    notes = list(args.notes) + notes
    for note in notes:
        print(note, file=sys.stderr)
    if any(opts.get("vocab_size") for _, opts in variants.values()):
        notes.append(check_calibration_is_held_out({p.id for p in prompts}))
    model, tokenizer = load_model("smollm2-135m")
    started = time.perf_counter()
    by_k = run_reference(args, prompts, label, variants, model, tokenizer)
    rows = cost_rows(by_k)
    meta = {"model": "smollm2-135m", "prompts": label, "num_prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
            "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": args.command}
    docs = {}
    if args.vllm and "sps" in families:
        encoded = [{"id": p.id, "category": p.category, "token_ids": encode(p, tokenizer, True)} for p in prompts]
        raw = run_vllm(args, encoded, args.drafts)
        summary = summarize_vllm(raw)
        summary["engines"] = raw["engines"]
        docs["model_drafters_vllm"] = vllm_document(summary, vllm_meta(summary, meta, next(iter(by_k.values())).meta),
                                                    [{"id": p.id, "category": p.category} for p in prompts])
    run_info = {"variants": {n: {"method": m, "options": o} for n, (m, o) in variants.items()}, "load_at_start": load_start,
                "load_at_end": _load(), "run_seconds": round(time.perf_counter() - started, 1),
                "torch_threads": args.threads, "command": args.command, "notes": notes}
    docs = {**reference_documents(by_k, rows, goals(rows), run_info), **docs}
    return write_documents(docs, out_dir, quick)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is the ``specplug-model-drafters/1`` file the old script wrote."""
    return data.get("schema") == LEGACY_SCHEMA


KIND = BenchKindSpec(id="model_drafters", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)
#: the vLLM document ``model_drafters`` writes beside its reference ones (rendered here, never run alone)
VLLM_KIND = BenchKindSpec(id="model_drafters_vllm", render=render)
