"""The suite kind ``retrieval_jacobi``: retrieval and Jacobi-family methods vs plain decoding and pld,
in specplug's reference engine.

Why it lives in specplug-lookahead: of the methods it measures, only Lookahead's one-forward decoder
cannot be reached through the registry (it is not a proposer: its lookahead branch rides in the
verification forward, and its ``MethodSpec`` registers the pool-driven proposer). Here it is this
plugin's own code. Everything else goes through public seams, so no other plugin is imported: pld,
REST, Token Recycling, Jacobi and the pool proposer are built by id from the registry, and REST's
datastore is built by the rest plugin's own command (``specplug rest build-datastore``). A method
whose plugin is not installed fails with the registry's message naming the package.

SmolLM2-135M-Instruct, float32 on the CPU, greedy, Spec-Bench prompts (default: the first 2 per
category, 26 prompts, run one per category first), at most 32 new tokens (64 would be better; a
2-core machine shared with other jobs forced the shorter default). Methods, each on every prompt, prompt by prompt (so
load changes on a shared machine hit every method alike):

- ``plain`` (the baseline) and ``pld`` (k = 5);
- ``rest``: datastore built from text SmolLM2 itself generated for *other* Spec-Bench prompts (the
  prompts after the benchmark ones in each category, default 1 per category capped at 8 prompts,
  64 tokens each; first turn only), with
  ``specplug rest build-datastore``; generated once and cached outside the repo under
  ``$SPECPLUG_CACHE/bench/retrieval_jacobi/``;
- ``lookahead``: the one-forward Lookahead decoder (W = 5, N = 4, G = 5; window, pool and verification
  in one target forward);
- ``lookahead-pool`` (with ``--methods``; not in the default run, to save time on 2 cores): the
  pool-driven proposer (what vLLM runs);
- ``recycling``: Token Recycling, one proposer for the whole run (its matrix stays warm across
  prompts, the paper's hot start), tree of 16 nodes;
- ``jacobi``: window 5.

Writes docs/results/retrieval_jacobi.{json,md} and prints the overview. Finished (prompt, method)
records are cached in ``$SPECPLUG_CACHE/bench/retrieval_jacobi/`` so an interrupted run resumes.

    specplug bench --suite benchmarks/suites/retrieval_jacobi.toml [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from specplug.bench.kind import BenchKindSpec

ROOT = Path(__file__).resolve().parents[4]  # the checkout the plugin is installed from
COMMAND = None  # the suite's command line, set by run()

MODEL = "smollm2-135m"
#: the benchmark's method name -> the registry id of the method that builds its proposer
REGISTRY_IDS = {"pld": "pld", "rest": "rest", "lookahead-pool": "lookahead", "recycling": "recycling", "jacobi": "jacobi"}
K = {"pld": 5, "rest": 16, "lookahead": None, "lookahead-pool": 15, "recycling": 16, "jacobi": 5}
OPTIONS = {
    "pld": {},
    "rest": {"max_nodes": 16, "max_depth": 8, "num_candidates": 64},
    "lookahead": {"window": 5, "ngram": 4, "guesses": 5},
    "lookahead-pool": {"ngram": 4, "guesses": 5},
    "recycling": {"width": 8, "tree_nodes": 16, "max_depth": 6},
    "jacobi": {"window": 5},
}


def corpus_prompts(all_prompts, bench_ids: set[str], per_category: int):
    """Spec-Bench prompts outside the benchmark set: the next ``per_category`` of each category."""
    taken: dict[str, int] = {}
    out = []
    for p in all_prompts:
        if p.id in bench_ids or taken.get(p.category, 0) >= per_category:
            continue
        taken[p.category] = taken.get(p.category, 0) + 1
        out.append(p)
    return out


def build_rest_datastore(model, tokenizer, prompts, cache: Path, max_new_tokens: int, batch: int = 8) -> Path:
    """Generate SmolLM2's greedy answers to ``prompts`` (cached jsonl), then build the datastore with
    ``specplug rest build-datastore`` (the rest plugin's own command; reused while its header matches)."""
    import torch

    from specplug.bench.runner import encode

    corpus = cache / f"rest_corpus-{max_new_tokens}.jsonl"
    done = {}
    if corpus.exists():
        for line in corpus.read_text().splitlines():
            row = json.loads(line)
            done[row["id"]] = row
    todo = [p for p in prompts if p.id not in done]
    if todo:
        print(f"generating REST corpus: {len(todo)} prompts x {max_new_tokens} tokens (once; cached in {corpus})", file=sys.stderr)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        ids = [encode(p, tokenizer, True) for p in chunk]
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])  # [b, width] left-padded
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
        with corpus.open("a") as fh:
            for p, row in zip(chunk, out[:, width:].tolist()):
                text = tokenizer.decode(row, skip_special_tokens=True)
                fh.write(json.dumps({"id": p.id, "category": p.category, "text": text}) + "\n")
        print(f"  {start + len(chunk)}/{len(todo)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    out_dir = cache / f"rest_datastore-{max_new_tokens}-{len(prompts)}"
    header = rest_datastore_header(out_dir)
    if header is None or header["source"] != corpus.name or header["num_documents"] != len(prompts):
        # the tokenizer is checked when the proposer opens the datastore (the ``model`` option)
        _specplug("rest", "build-datastore", str(corpus), str(out_dir), "--model", MODEL, "--overwrite")
    return out_dir


def rest_datastore_header(path: Path) -> dict | None:
    """The header of the REST datastore at ``path`` (``specplug rest info``), or ``None`` when there is none."""
    if not path.exists():
        return None
    try:
        return json.loads(_specplug("rest", "info", str(path)))
    except (subprocess.CalledProcessError, json.JSONDecodeError):
        return None


def _specplug(*argv: str) -> str:
    """Run a ``specplug`` command (a plugin's command is reached only through the CLI); returns its stdout."""
    return subprocess.run([sys.executable, "-m", "specplug", *argv], check=True, capture_output=True, text=True).stdout


def main(argv=None) -> None:
    """Decoding only: gradients off for the run, and the caller's grad mode left as it was."""
    import torch

    with torch.no_grad():
        return _main(argv)


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-category", type=int, default=2, help="benchmark prompts per Spec-Bench category")
    parser.add_argument("--corpus-per-category", type=int, default=1, help="other prompts per category whose answers form REST's corpus")
    parser.add_argument("--corpus-prompts", type=int, default=8, help="cap on the corpus prompts (generation is the slow part on 2 cores)")
    parser.add_argument("--corpus-tokens", type=int, default=64, help="tokens SmolLM2 generates per corpus prompt")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--methods", default="pld,rest,lookahead,recycling,jacobi", help="comma-separated subset of " + ",".join(K))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(K)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {','.join(K)}")

    import torch

    from specplug.bench.metrics import BASELINE, PromptRecord
    from specplug.bench.prompts import load_prompts, one_per_category_first
    from specplug.bench.results import BenchResults, render_markdown
    from specplug.bench.runner import BenchConfig, encode, run_meta
    from specplug.engine import ReferenceEngine
    from specplug.models import cache_dir, load_model
    from specplug.registry import get_registry
    from specplug_lookahead.decoder import LookaheadDecoder
    from specplug_lookahead.proposer import LookaheadOptions

    model, tokenizer = load_model(MODEL)
    bench, label = load_prompts(f"spec-bench:{args.per_category}")
    bench = one_per_category_first(bench)  # partial runs stay balanced
    all_prompts, _ = load_prompts("spec-bench")
    cache = cache_dir() / "bench" / "retrieval_jacobi"
    cache.mkdir(parents=True, exist_ok=True)

    corpus_set = corpus_prompts(all_prompts, {p.id for p in bench}, args.corpus_per_category)[: args.corpus_prompts]
    store_dir = None
    if "rest" in methods:
        store_dir = build_rest_datastore(model, tokenizer, corpus_set, cache, args.corpus_tokens)
        header = rest_datastore_header(store_dir)
        print(f"REST datastore: {header['num_documents']} documents, {header['num_tokens']} tokens", file=sys.stderr)

    engine = ReferenceEngine(model, tokenizer)
    registry = get_registry()
    run_options = {"rest": {"datastore": str(store_dir), "model": MODEL}}  # beside the recorded OPTIONS
    proposers = {m: registry.method(REGISTRY_IDS[m]).build({**OPTIONS[m], **run_options.get(m, {})})
                 for m in methods if m in REGISTRY_IDS}
    lookahead = LookaheadDecoder(engine, LookaheadOptions(**OPTIONS["lookahead"]))

    key = hashlib.sha256(json.dumps([args.max_new_tokens, K, OPTIONS, args.corpus_per_category, args.corpus_tokens]).encode()).hexdigest()[:12]
    record_path = cache / f"records-{key}.jsonl"
    cached = {}
    if record_path.exists():
        for line in record_path.read_text().splitlines():
            row = json.loads(line)
            cached[(row["prompt_id"], row["method"])] = PromptRecord.from_json(row)
    engine.generate([encode(bench[0], tokenizer, True)], max_new_tokens=2)  # warm-up, kept out of the figures

    records = []
    started = time.perf_counter()

    def write(done_prompts):
        cfg = BenchConfig(
            methods=methods, engine="reference", model=MODEL, prompts=label, k=5, max_new_tokens=args.max_new_tokens,
            title="Reference engine: retrieval and Jacobi-family methods (REST, Lookahead, Token Recycling, Jacobi) beside pld",
            command=COMMAND or "python -m specplug_lookahead.bench" + "".join(f" {a}" for a in sys.argv[1:]),
        )
        extra = {
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "device": "cpu",
            "torch_version": torch.__version__,
            "run_seconds": round(time.perf_counter() - started, 1),
            "method_k": {m: K[m] for m in methods},
            "method_options": {m: OPTIONS[m] for m in methods},
            "benchmark_prompt_ids": [p.id for p in done_prompts],
            "prompts_planned": len(bench),
            "rest_corpus": (
                f"SmolLM2's own greedy answers ({args.corpus_tokens} tokens max) to {len(corpus_set)} other Spec-Bench prompts "
                f"(ids {', '.join(p.id for p in corpus_set)}), first turn, none of them in the benchmark set"
            ) if "rest" in methods else None,
        }
        meta = run_meta(cfg, label if len(done_prompts) == len(bench) else f"{label}, first {len(done_prompts)} of {len(bench)}",
                     done_prompts, {k: v for k, v in extra.items() if v is not None})
        meta["k"] = ", ".join(f"{m} {K[m] if K[m] is not None else 'W5 N4 G5 (one forward)'}" for m in methods)
        results = BenchResults.build(meta, [BASELINE, *methods], records)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "retrieval_jacobi.json").write_text(results.dumps(), encoding="utf-8")
        (args.out / "retrieval_jacobi.md").write_text(render_markdown(results), encoding="utf-8")
        return results

    for n, prompt in enumerate(bench, 1):
        ids = encode(prompt, tokenizer, True)
        for method in [BASELINE, *methods]:
            if (prompt.id, method) in cached:
                records.append(cached[(prompt.id, method)])
                continue
            if method == BASELINE:
                result = engine.generate([ids], max_new_tokens=args.max_new_tokens)[0]
            elif method == "lookahead":
                result = lookahead.generate([ids], max_new_tokens=args.max_new_tokens)[0]
            else:
                result = engine.generate([ids], proposers[method], k=K[method], max_new_tokens=args.max_new_tokens)[0]
            s = result.stats
            record = PromptRecord(
                prompt_id=prompt.id, category=prompt.category, method=method, new_tokens=s.new_tokens, steps=s.steps,
                drafted=s.drafted, accepted=s.accepted, seconds=s.wall_s, draft_s=s.draft_s, verify_s=s.verify_s,
                output_ids=list(result.token_ids),
            )
            with record_path.open("a") as fh:
                fh.write(json.dumps(record.to_json()) + "\n")
            records.append(record)
            print(f"[{n}/{len(bench)}] {prompt.category:<22} {method:<15} MAT {s.mat:.2f}  {s.tokens_per_s:5.1f} tok/s", file=sys.stderr)
        results = write(bench[:n])  # after every prompt, so an interrupted run still leaves its figures
    print(render_markdown(results))



# -- suite kind ``retrieval_jacobi`` -----------------------------------------------------------------------

DEFAULTS = {"per_category": 2, "corpus_per_category": 1, "corpus_prompts": 8, "corpus_tokens": 64, "max_new_tokens": 32,
            "methods": ["pld", "rest", "lookahead", "recycling", "jacobi"]}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    """The benchmark's own loop (Lookahead is a decoder, not a proposer, and Token Recycling keeps one
    proposer warm across prompts, so :func:`specplug.bench.runner.run_bench` cannot run it as it is)."""
    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    return run_script(sys.modules[__name__], suite, quick, out_dir, settings_of(suite, quick, DEFAULTS),
                      ["--out", "{tmp}"], "retrieval_jacobi.json")


def convert(legacy: dict, path: Path | None = None) -> dict:
    """The benchmark writes ``specplug-bench/1`` itself."""
    from specplug.bench.results import BenchResults

    return {"retrieval_jacobi": BenchResults(legacy["meta"], legacy["methods"], legacy["summary"], legacy["records"],
                                             legacy.get("extra"))}


KIND = BenchKindSpec(id="retrieval_jacobi", run=run, convert=convert, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
