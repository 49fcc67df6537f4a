"""The ``speech`` bench kind: speculative speech recognition with Whisper, per drafter, in one run.

Each utterance (sentences of the held-out ``test`` split, synthesised with espeak-ng; the drafts are
trained on the ``train`` split only) is encoded once (features + encoder, timed; every method's
whole-utterance time adds that same figure); then plain greedy decoding and every method decode it,
interleaved per utterance, in the same process. Per method: WER against the reference
sentence (identical to plain decoding's for a lossless method), how many transcripts are
token-identical to plain decoding's, MAT, the decoder's speedup over plain decoding (decoding time
only) and the whole utterance's (log-mel features + encoder + decoder), and the decoder's cost split
(draft, verify, overhead). Timed runs hold the timing lock with one thread.

``methods`` entries are ``"ID"`` or ``"ID:key=value,key=value"`` (options), e.g.
``"specasr:max_branches=0"``; each is shown under its full entry.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from specplug.bench.documents import aggregate_json, goal_lines, summary_doc
from specplug.bench.kind import BenchKindSpec
from specplug.bench.results import fmt

__all__ = ["KIND", "parse_method", "wer"]

DEFAULTS = {
    "model": "whisper-tiny.en",
    "utterances": 100,
    "methods": ["distil_whisper", "specasr", "kangaroo"],
    "k": 6,
    "max_new_tokens": 96,
    "threads": 1,
    "goal_mat": 2.5,
    "goal_decoder_speedup": 1.5,
}


def parse_method(entry: str) -> tuple[str, dict[str, Any]]:
    """``"specasr:max_branches=0,recycle=false"`` -> ``("specasr", {"max_branches": "0", "recycle": "false"})``."""
    method, _, rest = entry.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"method entry {entry!r}: options are key=value pairs")
        options[key.strip()] = value.strip()
    return method.strip(), options


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) after lower-casing and dropping punctuation."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1], len(ref)


def _row(name, utterance, transcription, plain_tokens) -> dict:
    stats = transcription.result.stats
    edits, words = wer(utterance[1], transcription.text)
    return {"method": name, "utterance": utterance[0].name, "tokens": transcription.result.token_ids,
            "identical": transcription.result.token_ids == plain_tokens if plain_tokens is not None else None,
            "edits": edits, "words": words, "new_tokens": stats.new_tokens, "steps": stats.steps, "drafted": stats.drafted,
            "accepted": stats.accepted, "decoder_s": stats.wall_s, "draft_s": stats.draft_s, "verify_s": stats.verify_s,
            "front_s": transcription.features_s + transcription.encoder_s}


def _aggregate(rows: list[dict], plain: list[dict]) -> dict:
    new_tokens = sum(r["new_tokens"] for r in rows)
    decoder = sum(r["decoder_s"] for r in rows)
    plain_decoder = sum(r["decoder_s"] for r in plain)
    whole = sum(r["decoder_s"] + r["front_s"] for r in rows)
    plain_whole = sum(r["decoder_s"] + r["front_s"] for r in plain)
    draft_s, verify_s = sum(r["draft_s"] for r in rows), sum(r["verify_s"] for r in rows)
    figures = aggregate_json(prompts=len(rows), new_tokens=new_tokens, steps=sum(r["steps"] for r in rows),
                             drafted=sum(r["drafted"] for r in rows), accepted=sum(r["accepted"] for r in rows),
                             seconds=decoder, draft_s=draft_s, verify_s=verify_s,
                             identical=sum(bool(r["identical"]) for r in rows),
                             speedup=plain_decoder / decoder if decoder > 0 else None)
    figures.update(
        wer=sum(r["edits"] for r in rows) / max(1, sum(r["words"] for r in rows)),
        whole_utterance_speedup=plain_whole / whole if whole > 0 else None,
        decoder_s=decoder, whole_s=whole, overhead_s=decoder - draft_s - verify_s,
        ms_per_token=1000 * decoder / new_tokens if new_tokens else None,
    )
    return figures


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import torch
    from transformers import WhisperFeatureExtractor

    from specplug.bench.documents import write_documents
    from specplug.bench.runner import hardware
    from specplug.bench.suites import settings_of
    from specplug.engine import ReferenceEngine
    from specplug.kit.seq2seq import SAMPLE_RATE, Transcription, decoder_prompt, load_wav, transcribe
    from specplug.models import load_model, resolve_model
    from specplug.registry import get_registry
    from specplug.testing.speech import TTS_MISSING, have_tts, speech_corpus

    args = SimpleNamespace(**settings_of(suite, quick, DEFAULTS), command=suite.command(quick))
    if not have_tts():
        raise SystemExit(f"speech bench {TTS_MISSING}")
    torch.set_num_threads(int(args.threads))
    load_before = os.getloadavg()
    model, tokenizer = load_model(args.model, dtype="float32", device="cpu")
    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model(args.model))
    corpus = speech_corpus("test", int(args.utterances))
    audio = [load_wav(path) for path, _ in corpus]
    engine = ReferenceEngine(model, tokenizer)
    registry = get_registry()
    methods = {entry: parse_method(entry) for entry in args.methods}
    proposers = {entry: registry.method(mid).build(opts) for entry, (mid, opts) in methods.items()}
    # warm-up on one utterance (one-off costs: first calls, draft loading), not recorded
    for proposer in [None, *proposers.values()]:
        transcribe(engine, extractor, audio[:1], proposer, k=args.k, max_new_tokens=4)
    rows: dict[str, list[dict]] = {"plain": [], **{entry: [] for entry in methods}}
    prompt = decoder_prompt(tokenizer)
    started = time.perf_counter()
    with torch.inference_mode():
        for i, (utterance, samples) in enumerate(zip(corpus, audio)):
            # the front end (log-mel features + encoder) runs once per utterance: it is the same
            # computation for every method, so each method's whole-utterance time adds this one figure
            t0 = time.perf_counter()
            features = extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
            t1 = time.perf_counter()
            engine.target.encode(features)
            front = (t1 - t0, time.perf_counter() - t1)
            base = Transcription(engine.generate([prompt], None, k=args.k, max_new_tokens=args.max_new_tokens)[0], *front)
            rows["plain"].append(_row("plain", utterance, base, None))
            for entry, proposer in proposers.items():
                result = engine.generate([prompt], proposer, k=args.k, max_new_tokens=args.max_new_tokens)[0]
                rows[entry].append(_row(entry, utterance, Transcription(result, *front), base.result.token_ids))
            if (i + 1) % 10 == 0:
                print(f"{i + 1}/{len(corpus)} utterances ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    per = {name: {"overall": _aggregate(r, rows["plain"]), "categories": {}} for name, r in rows.items()}
    counters = {entry: vars(p.counts) for entry, p in proposers.items() if hasattr(p, "counts")}
    best = max(methods, key=lambda e: per[e]["overall"]["mat"] or 0.0) if methods else None
    goals = []
    if best is not None:
        o = per[best]["overall"]
        goals.append({"goal": f"best drafter's MAT >= {args.goal_mat}", "met": (o["mat"] or 0) >= args.goal_mat,
                      "figure": f"{best}: {fmt(o['mat'])}"})
        goals.append({"goal": f"its decoder speedup >= {args.goal_decoder_speedup}x", "met": (o["speedup"] or 0) >= args.goal_decoder_speedup,
                      "figure": f"{best}: {fmt(o['speedup'], 'x')} (whole utterance {fmt(o['whole_utterance_speedup'], 'x')})"})
        for entry in methods:
            o = per[entry]["overall"]
            goals.append({"goal": f"{entry}: transcripts identical to plain decoding", "met": o["identical"] == len(corpus),
                          "figure": f"{o['identical']}/{len(corpus)}; WER {o['wer'] * 100:.2f}% vs plain {per['plain']['overall']['wer'] * 100:.2f}%"})
    meta = {"title": "Speculative speech recognition: Whisper tiny.en with a distilled draft decoder, SpecASR and a trained early exit (reference engine, CPU)",
            "model": args.model, "engine": "specplug_reference", "prompts": f"speech test split: {len(corpus)} synthesised utterances",
            "num_prompts": len(corpus), "categories": [], "k": args.k, "max_new_tokens": args.max_new_tokens, "temperature": 0.0,
            "dtype": "float32", "device": "cpu", "threads": args.threads, "hardware": hardware(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": args.command}
    drafts = {entry: getattr(p, "draft", None) for entry, p in proposers.items()}
    draft_meta = {entry: {k: v for k, v in (getattr(d, "specplug_meta", None) or {}).items() if k != "vocab"} for entry, d in drafts.items()}
    extra = {"kind": "speech", "goals": goals, "counters": counters, "drafts": draft_meta, "quick": quick,
             "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
             "run_s": round(time.perf_counter() - started, 1)}
    return write_documents({suite.name: summary_doc(meta, per, extra)}, out_dir, quick)


def render(results, heading: str = "#") -> list[str]:
    extra = results.extra
    out = [f"One run; every method decodes each utterance right after plain decoding (interleaved). "
           f"Load average before / after: {extra['load_before']} / {extra['load_after']}; run {extra['run_s']} s.", "",
           f"{heading}# Per method", "",
           "| method | WER | identical | MAT | decoder speedup | whole-utterance speedup | ms/token | draft s | verify s | overhead s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in results.methods:
        o = results.summary[name]["overall"]
        out.append(f"| {name} | {o['wer'] * 100:.2f}% | {o['identical']}/{o['prompts']} | {fmt(o['mat'])} | {fmt(o['speedup'], 'x')} | "
                   f"{fmt(o['whole_utterance_speedup'], 'x')} | {fmt(o['ms_per_token'])} | {o['draft_s']:.2f} | {o['verify_s']:.2f} | {o['overhead_s']:.2f} |")
    out += [""] + cost_split_lines(results, heading)
    for entry, counts in extra.get("counters", {}).items():
        out.append(f"- {entry} mechanisms: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for entry, meta in extra.get("drafts", {}).items():
        if meta:
            training = meta.get("training", {})
            shape = (f"the target's first {meta['exit_layer']} decoder layers + trained exit adapter" if meta.get("kind") == "early_exit"
                     else f"layers {meta.get('init_layers')} of the target")
            out.append(f"- {entry} draft: {shape}, {training.get('train_utterances')} training "
                       f"utterances, {training.get('steps')} steps; held-out next-token agreement {training.get('agreement_before')} "
                       f"-> {training.get('agreement_after')}")
    return out + [""] + goal_lines(extra.get("goals", []), heading)


def cost_split_lines(results, heading: str = "#") -> list[str]:
    """Each drafter's decoder cost in units of one plain decoding step (the ms one plain token costs):
    a step costs ``drafted x draft + verify``; it pays off when MAT exceeds that sum."""
    plain = results.summary.get("plain", {}).get("overall")
    if not plain or not plain.get("steps") or not plain.get("decoder_s"):
        return []
    step = plain["decoder_s"] / plain["steps"]  # plain: one target forward per token
    out = [f"{heading}# Cost split (units of one plain step, {1000 * step:.1f} ms)", "",
           "| method | drafted per step | draft per drafted token | verify per step | overhead per step | step cost | MAT |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name in results.methods:
        o = results.summary[name]["overall"]
        if name == "plain" or not o.get("steps"):
            continue
        steps, drafted = o["steps"], o.get("drafted") or 0
        per_token = o["draft_s"] / drafted / step if drafted else 0.0
        verify, overhead = o["verify_s"] / steps / step, o["overhead_s"] / steps / step
        out.append(f"| {name} | {drafted / steps:.2f} | {per_token:.2f} | {verify:.2f} | {overhead:.2f} | "
                   f"{o['decoder_s'] / steps / step:.2f} | {fmt(o['mat'])} |")
    return out + [""]


KIND = BenchKindSpec(id="speech", run=run, render=render, defaults=DEFAULTS)
