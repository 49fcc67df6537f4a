"""Suite kind ``long_context``: MagicDec's decoding speedup over plain decoding against context length.

For each context length ``L`` (tokens of prompt), one long input: the longest Spec-Bench summarisation
and RAG documents, concatenated (cycled) until ``L`` tokens, then the instruction to summarise, in the
model's chat template. SmolLM2-135M-Instruct float32 in specplug's reference engine, one thread, greedy:

- **decode time**: ``wall(T new tokens) - wall(1 new token)`` for plain decoding and for MagicDec, so the
  target's prefill (the same for both) is left out; MagicDec's own draft prefill (its sparse cache is
  filled by running the prompt once more, see :mod:`specplug_magicdec.proposer`) stays in its time;
- **speedup** = plain decode time / MagicDec decode time (same tokens: greedy is lossless, checked);
- **attention share**: the share of a plain decode step spent on the KV cache, estimated as
  ``(t(L) - t(L0)) / t(L)`` with ``t`` the plain per-token decode time and ``L0`` the shortest length;
- **crossover**: the shortest measured length where MagicDec's speedup exceeds 1 (linear interpolation
  between the measured lengths).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from specplug.bench.kind import BenchKindSpec

__all__ = ["KIND"]

DEFAULTS = {"name": "long_context", "lengths": [256, 1024, 2048, 4096], "new_tokens": 32, "k": 5,
            "options": {"kv_budget": 256, "sinks": 16}, "threads": 1}


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
    method = get_registry().method("magicdec")
    rows = []
    for length in s["lengths"]:
        prompt = long_prompt(tokenizer, length)
        print(f"length {length}: {len(prompt)} prompt tokens", file=sys.stderr, flush=True)
        timings = {}
        outputs = {}
        for name in ("plain", "magicdec"):
            make = (lambda: None) if name == "plain" else (lambda: method.build(s["options"]))
            first = engine.generate([prompt], make(), k=s["k"], max_new_tokens=1)[0]
            full = engine.generate([prompt], make(), k=s["k"], max_new_tokens=s["new_tokens"])[0]
            timings[name] = full.stats.wall_s - first.stats.wall_s
            outputs[name] = full
        m = outputs["magicdec"].stats
        rows.append({"length": len(prompt), "plain_decode_s": timings["plain"], "magicdec_decode_s": timings["magicdec"],
                     "speedup": timings["plain"] / timings["magicdec"], "mat": m.mat, "acceptance": m.acceptance_rate,
                     "draft_s": m.draft_s, "verify_s": m.verify_s, "new_tokens": len(outputs["plain"].token_ids),
                     "same_output": outputs["plain"].token_ids == outputs["magicdec"].token_ids,
                     "plain_per_token_s": timings["plain"] / max(len(outputs["plain"].token_ids) - 1, 1)})
        print(f"  speedup {rows[-1]['speedup']:.2f} MAT {m.mat:.2f}", file=sys.stderr, flush=True)
    base = rows[0]["plain_per_token_s"]
    for row in rows:
        row["attention_share"] = max(0.0, (row["plain_per_token_s"] - base) / row["plain_per_token_s"])
    crossover = None
    for a, b in zip(rows, rows[1:]):
        if a["speedup"] <= 1 < b["speedup"]:
            crossover = a["length"] + (1 - a["speedup"]) / (b["speedup"] - a["speedup"]) * (b["length"] - a["length"])
            break
    if crossover is None and rows and rows[0]["speedup"] > 1:
        crossover = float(rows[0]["length"])  # already above 1 at the shortest length measured
    rising = all(b["speedup"] >= a["speedup"] for a, b in zip(rows, rows[1:]))
    goals = [{"goal": "MagicDec's speedup rises with context length", "met": rising,
              "figure": ", ".join(f"{r['length']}: {r['speedup']:.2f}x" for r in rows)},
             {"goal": "crossover length measured", "met": crossover is not None,
              "figure": f"speedup > 1 from about {crossover:.0f} tokens" if crossover is not None else
              f"no crossover up to {rows[-1]['length']} tokens"}]
    meta = {"title": "MagicDec against context length (reference engine)", "model": "smollm2-135m", "engine": "reference",
            "prompts": "long documents (Spec-Bench summarization + RAG, cycled)", "num_prompts": len(rows),
            "categories": ["long"], "k": s["k"], "max_new_tokens": s["new_tokens"], "temperature": 0.0, "dtype": "float32",
            "device": "cpu", "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": suite.command(quick), "note": f"MagicDec options {s['options']}; decode time excludes the target's prefill"}
    plain = aggregate_json(prompts=len(rows), new_tokens=sum(r["new_tokens"] for r in rows), steps=sum(r["new_tokens"] for r in rows))
    doc = summary_doc(meta, {"plain": {"overall": plain}},
                      {"kind": "long_context", "rows": rows, "crossover": crossover, "goals": goals, "load": os.getloadavg()[0]})
    return write_documents({s["name"]: doc}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import goal_lines

    extra = results.extra or {}
    out = [f"{heading}# Speedup against context length", "",
           "Decode time = wall time of all new tokens minus that of the first (the target's prefill left out); MagicDec's "
           "own draft prefill is included. Attention share: the part of a plain decode step that grows with the context, "
           f"relative to the shortest length (load average {extra.get('load', 0):.1f}).", "",
           "| context | plain decode s | MagicDec decode s | speedup | MAT | acceptance | draft s | verify s | attention share | same output |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in extra.get("rows", []):
        out.append(f"| {r['length']} | {r['plain_decode_s']:.2f} | {r['magicdec_decode_s']:.2f} | {r['speedup']:.2f} | {r['mat']:.2f} | "
                   f"{r['acceptance']:.1%} | {r['draft_s']:.2f} | {r['verify_s']:.2f} | {r['attention_share']:.1%} | {r['same_output']} |")
    return out + [""] + goal_lines(extra.get("goals", []), heading)


KIND = BenchKindSpec(id="long_context", run=run, render=render, defaults=DEFAULTS)
