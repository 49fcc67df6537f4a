"""Suite kind ``long_context``: MagicDec and TriForce against context length, beside plain decoding.

For each context length ``L`` (tokens of prompt), one long input: Spec-Bench's longest summarisation and
RAG documents, concatenated (cycled) into a synthetic document of ``L`` tokens, then the instruction to
summarise, in the model's chat template (``spec_bench = true`` adds the longest RAG and summarisation
prompts as they are). SmolLM2-135M-Instruct float32 in specplug's reference engine, one thread, greedy:

- **decode time**: ``wall(T new tokens) - wall(1 new token)``; with one new token no method drafts, so
  ``wall(1)`` is the target's prefill alone and is measured once per length. The methods' own prefills
  (MagicDec's sparse cache, TriForce's retrieval cache and draft cache) stay in their decode time;
- **speedup** = plain decode time / the method's decode time (same tokens: greedy is lossless, checked);
- **attention share**: measured directly after the plain run: the median time of a one-token forward
  over the whole KV cache against the same forward with the cache cut to its last position, as a
  share of the former;
- **crossover**: the shortest length where a method's speedup exceeds 1 (linear interpolation between
  the measured lengths);
- lengths are run shortest first; a length whose predicted time (the previous one's, scaled by the
  length ratio to the power 1.5) would overrun ``time_budget_s`` is skipped and recorded as skipped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from specplug.bench.kind import BenchKindSpec

__all__ = ["KIND"]

DEFAULTS = {"name": "long_context", "lengths": [256, 1024, 2048, 4096], "new_tokens": 32, "k": {"magicdec": 3, "triforce": 5},
            "methods": {"magicdec": {"kv_budget": 256, "sinks": 16},
                        "triforce": {"layers": "0-3", "kv_budget": 256, "chunk_size": 8, "draft_k": 2}},
            "spec_bench": True, "threads": 1, "time_budget_s": 420}


def spec_bench_documents(tokenizer) -> list[tuple[str, list[int]]]:
    """The longest RAG and the longest summarisation prompt of Spec-Bench, as they are, in the chat template."""
    from specplug.bench.prompts import spec_bench_path

    rows = [json.loads(line) for line in Path(spec_bench_path()).read_text().splitlines() if line.strip()]
    out = []
    for category in ("rag", "summarization"):
        longest = max((r for r in rows if r["category"] == category), key=lambda r: len(r["turns"][0]))
        chat = tokenizer.apply_chat_template([{"role": "user", "content": longest["turns"][0]}], add_generation_prompt=True, tokenize=False)
        out.append((f"spec_bench {category}", list(tokenizer(chat, add_special_tokens=False)["input_ids"])))
    return out


def attention_share(target, repeats: int = 8) -> float:
    """Share of a one-token forward spent on the KV cache: full cache against the cache cut to its last entry."""
    import statistics
    import time as clock

    def timed() -> float:
        times = []
        for _ in range(repeats):
            t0 = clock.perf_counter()
            target.forward([0], logits_to_keep=1)
            times.append(clock.perf_counter() - t0)
            target.rollback(target.cache_len - 1)
        return statistics.median(times)

    full = timed()
    target.keep([target.cache_len - 1])
    short = timed()
    return max(0.0, (full - short) / full)


def crossover_of(rows: list[dict], method: str) -> float | None:
    """The shortest length where ``method``'s speedup exceeds 1 (interpolated), None if it never does."""
    points = sorted((r["length"], r["speedup"]) for r in rows if r["method"] == method)
    if points and points[0][1] > 1:
        return float(points[0][0])
    for (la, sa), (lb, sb) in zip(points, points[1:]):
        if sa <= 1 < sb:
            return la + (1 - sa) / (sb - sa) * (lb - la)
    return None


def long_prompt(tokenizer, length: int) -> list[int]:
    """A chat prompt of about ``length`` tokens: Spec-Bench's longest summarisation and RAG inputs, cycled."""
    from specplug.bench.prompts import spec_bench_path

    rows = [json.loads(line) for line in Path(spec_bench_path()).read_text().splitlines() if line.strip()]
    docs = sorted((r for r in rows if r["category"] in ("summarization", "rag")), key=lambda r: -len(r["turns"][0]))
    instruction = "\n\nSummarize the documents above in a few sentences."
    budget = length - 40  # room for the chat template and the instruction
    text, i = "", 0
    while True:
        candidate = text + docs[i % len(docs)]["turns"][0] + "\n\n"
        if len(tokenizer(candidate)["input_ids"]) > budget:
            break
        text, i = candidate, i + 1
    words = docs[i % len(docs)]["turns"][0].split()
    lo, hi = 0, len(words)  # fill the rest with part of the next document
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer(text + " ".join(words[:mid]))["input_ids"]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    text += " ".join(words[:lo])
    chat = tokenizer.apply_chat_template([{"role": "user", "content": text + instruction}], add_generation_prompt=True, tokenize=False)
    return list(tokenizer(chat, add_special_tokens=False)["input_ids"])


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch

    from specplug.bench.documents import aggregate_json, summary_doc, write_documents
    from specplug.bench.runner import hardware
    from specplug.bench.suites import settings_of
    from specplug.engine import ReferenceEngine
    from specplug.models import load_model
    from specplug.registry import get_registry

    s = settings_of(suite, quick, DEFAULTS)
    torch.set_num_threads(int(s["threads"]))
    model, tokenizer = load_model("smollm2-135m")
    engine = ReferenceEngine(model, tokenizer, eos_token_id=None)
    registry = get_registry()
    methods = {name: registry.method(name) for name in s["methods"]}
    ks = s["k"] if isinstance(s["k"], dict) else dict.fromkeys(methods, s["k"])
    inputs = [("synthetic", length) for length in sorted(s["lengths"])]
    if s["spec_bench"]:
        inputs = [(source, ids) for source, ids in spec_bench_documents(tokenizer)] + inputs
    rows, skipped, started, last = [], [], time.perf_counter(), None
    for source, item in inputs:
        prompt = item if isinstance(item, list) else long_prompt(tokenizer, item)
        if last is not None:  # predicted from the previous input's cost
            predicted = last[1] * (len(prompt) / last[0]) ** 1.5
            if time.perf_counter() - started + predicted > s["time_budget_s"]:
                skipped.append(len(prompt))
                print(f"skipping {len(prompt)} tokens: about {predicted:.0f} s would overrun the time budget", file=sys.stderr, flush=True)
                continue
        t_input = time.perf_counter()
        print(f"{source}: {len(prompt)} prompt tokens", file=sys.stderr, flush=True)
        prefill = engine.generate([prompt], None, max_new_tokens=1)[0].stats.wall_s
        plain = engine.generate([prompt], None, max_new_tokens=s["new_tokens"])[0]
        plain_s = plain.stats.wall_s - prefill
        share = attention_share(engine.target)
        per_token = plain_s / max(len(plain.token_ids) - 1, 1)
        for name, method in methods.items():
            proposer = method.build(s["methods"][name])
            out = engine.generate([prompt], proposer, k=int(ks[name]), max_new_tokens=s["new_tokens"])[0]
            st = out.stats
            row = {"method": name, "source": source, "length": len(prompt), "plain_decode_s": plain_s, "decode_s": st.wall_s - prefill,
                   "speedup": plain_s / (st.wall_s - prefill), "mat": st.mat, "acceptance": st.acceptance_rate,
                   "draft_s": st.draft_s, "verify_s": st.verify_s, "steps": st.steps, "drafted": st.drafted, "accepted": st.accepted,
                   "new_tokens": len(out.token_ids), "same_output": out.token_ids == plain.token_ids,
                   "plain_per_token_s": per_token, "attention_share": share, "k": int(ks[name])}
            counts = getattr(proposer, "counts", None)
            if name == "triforce" and counts is not None:  # the hierarchy's own split
                row.update(draft_model_s=counts.draft_s, middle_s=counts.middle_s,
                           middle_acceptance=counts.draft_accepted / max(counts.draft_tokens, 1))
            rows.append(row)
            print(f"  {name}: speedup {row['speedup']:.2f} MAT {st.mat:.2f} same {row['same_output']}", file=sys.stderr, flush=True)
        last = (len(prompt), time.perf_counter() - t_input)
    synthetic = [r for r in rows if r["source"] == "synthetic"]
    goals, crossovers = [], {}
    for name in methods:
        crossovers[name] = crossover_of(synthetic, name)
    md = [r for r in synthetic if r["method"] == "magicdec"]
    if md:
        rising = all(b["speedup"] >= a["speedup"] for a, b in zip(md, md[1:]))
        cross = crossovers.get("magicdec")
        goals = [{"goal": "MagicDec's speedup rises with context length", "met": rising,
                  "figure": ", ".join(f"{r['length']}: {r['speedup']:.2f}x" for r in md)},
                 {"goal": "crossover length measured (MagicDec's speedup above 1)", "met": cross is not None,
                  "figure": f"speedup > 1 from about {cross:.0f} tokens" if cross is not None else
                  f"no crossover up to {md[-1]['length']} tokens"}]
    meta = {"title": "MagicDec and TriForce against context length (reference engine)", "model": "smollm2-135m", "engine": "reference",
            "prompts": "long documents (Spec-Bench summarization + RAG: the longest as they are, and cycled to each length)",
            "num_prompts": len({r["length"] for r in rows}), "categories": ["long"], "k": max(ks.values()), "max_new_tokens": s["new_tokens"],
            "temperature": 0.0, "dtype": "float32", "device": "cpu", "hardware": hardware(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": suite.command(quick),
            "note": f"methods {s['methods']}, k {ks}; decode time excludes the target's prefill, one thread"}
    lengths = sorted({r["length"] for r in rows})
    summary = {"plain": {"overall": aggregate_json(prompts=len(lengths), new_tokens=len(lengths) * s["new_tokens"], steps=len(lengths) * s["new_tokens"])}}
    for name in methods:
        mine = [r for r in rows if r["method"] == name]
        summary[name] = {"overall": aggregate_json(prompts=len(mine), new_tokens=sum(r["new_tokens"] for r in mine),
                                                   steps=sum(r["steps"] for r in mine), drafted=sum(r["drafted"] for r in mine),
                                                   accepted=sum(r["accepted"] for r in mine),
                                                   identical=sum(bool(r["same_output"]) for r in mine))}
    doc = summary_doc(meta, summary, {"kind": "long_context", "rows": rows, "crossovers": crossovers, "skipped": skipped,
                                      "goals": goals, "load": os.getloadavg()[0]})
    return write_documents({s["name"]: doc}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import goal_lines

    extra = results.extra or {}
    out = [f"{heading}# Speedup against context length", "",
           "Decode time = wall time of all new tokens minus the target's prefill (measured once per input); each method's "
           "own prefill is included. Attention share: the part of a plain one-token forward spent on the KV cache (full cache "
           f"against the cache cut to one entry). Load average at the end {extra.get('load', 0):.1f}.", "",
           "| input | context | method | k | plain decode s | decode s | speedup | MAT | acceptance | draft s | verify s | attention share | same output |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in extra.get("rows", []):
        out.append(f"| {r['source']} | {r['length']} | {r['method']} | {r.get('k', '')} | {r['plain_decode_s']:.2f} | {r['decode_s']:.2f} | "
                   f"{r['speedup']:.2f} | {r['mat']:.2f} | {r['acceptance']:.1%} | {r['draft_s']:.2f} | {r['verify_s']:.2f} | "
                   f"{r['attention_share']:.1%} | {r['same_output']} |")
    tri = [r for r in extra.get("rows", []) if "middle_s" in r]
    if tri:
        out += ["", "TriForce's draft time split: the small draft model against the middle level (the target over the retrieval "
                "cache, its build included), and how much of the small draft the middle level accepted.", "",
                "| context | draft model s | middle level s | middle-level acceptance |", "|---|---|---|---|"]
        out += [f"| {r['length']} | {r['draft_model_s']:.2f} | {r['middle_s']:.2f} | {r['middle_acceptance']:.1%} |" for r in tri]
    crossovers = extra.get("crossovers", {})
    if crossovers:
        out += ["", "Crossover (synthetic inputs): " + "; ".join(
            f"{m}: {'from about %.0f tokens' % c if c is not None else 'none in the measured range'}" for m, c in crossovers.items())]
    if extra.get("skipped"):
        out += ["", f"Skipped (would overrun the time budget): {', '.join(map(str, extra['skipped']))} tokens."]
    return out + [""] + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="long_context", run=run, render=render, defaults=DEFAULTS)
