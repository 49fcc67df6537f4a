"""Self-synthesised training prompts, as Magpie makes them (Xu et al., arXiv 2406.08464).

No hub is reachable, so the instructions come from the target itself: an instruct model given only
its chat template's *user prefix* (``<|im_start|>user\\n`` after a system turn) writes a plausible user
turn, because that is what followed the prefix in its alignment data. Magpie steers the task with the
system turn; specplug does the same with one short system prompt per task type in :data:`TASK_TYPES`
(``general`` has none: plain Magpie), so a round asks each type for the same number of prompts.

Each round (``round_size`` prompts kept, at most) samples ``oversample`` x as many user turns
(temperature 1, top-p 0.99, Magpie's settings; a seed per sample, so a round is reproducible), then
keeps a turn only if it

- ended by itself (the model closed the turn before ``max_tokens``), has 3-300 words, no chat-template
  tokens, mostly letters, no repetition loop (distinct word trigrams >= 50%), and does not open like
  an answer ("Sure", "Certainly", "As an AI", ...);
- is not a duplicate (normalised text) or a near-duplicate (word-trigram Jaccard >= 0.6) of any
  prompt kept in this or an earlier round;
- does not overlap Spec-Bench (:mod:`specplug.train.overlap`; the overlapping ones are counted);

and keeps at most ``round_size / len(TASK_TYPES)`` per type (balance). The kept prompts of round ``r``
go to ``magpie/round-RRRR.jsonl`` with their filter counts in ``magpie/round-RRRR.json``; a rerun
reads them back instead of sampling again.

Single-turn only: SmolLM2-135M rarely keeps a second user turn on topic, so multi-turn synthesis is
left out (see docs/guides/training.md).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

from specplug.train.overlap import SpecBenchIndex, _hash, _ngrams, normalise

__all__ = ["TASK_TYPES", "MagpieSettings", "NearDuplicates", "keep_reason", "synthesise_round"]

#: task type -> system prompt that steers the user turn the model writes (None: plain Magpie).
TASK_TYPES: dict[str, str | None] = {
    "general": None,
    "writing": "You are an assistant that helps users write: stories, poems, emails, essays, blog posts and speeches.",
    "roleplay": "You are an assistant that plays characters and imagined situations the user asks for.",
    "reasoning": "You are an assistant that solves logic puzzles and reasoning questions step by step.",
    "math": "You are a math tutor. Users ask you arithmetic, algebra, geometry and word problems.",
    "coding": "You are a programming assistant. Users ask you to write, explain or fix code in Python, JavaScript, C++ and SQL.",
    "extraction": "You are an assistant that extracts facts, names, numbers and structured data from text the user gives.",
    "stem": "You are an assistant that explains science, technology, engineering and medicine.",
    "humanities": "You are an assistant that discusses history, philosophy, economics, law and the arts.",
    "translation": "You are a translator. Users give you sentences in one language and ask for another.",
    "summarization": "You are an assistant that summarizes articles, reports and stories the user pastes.",
    "qa": "You are an assistant that answers short factual questions about the world.",
    "rag": "You are an assistant that answers questions using only the passages the user provides.",
}

_ANSWER_OPENINGS = ("sure", "certainly", "of course", "as an ai", "i'm sorry", "i am sorry", "hello! how can i",
                    "hi! how can i", "how can i help", "how can i assist", "i'd be happy", "i would be happy")
NEAR_DUPLICATE_JACCARD = 0.6


class MagpieSettings:
    """What decides a round's prompts (part of the data's identity)."""

    def __init__(self, round_size: int = 512, oversample: float = 1.6, temperature: float = 1.0, top_p: float = 0.99,
                 max_tokens: int = 160, seed: int = 0) -> None:
        self.round_size, self.oversample = int(round_size), float(oversample)
        self.temperature, self.top_p, self.max_tokens, self.seed = float(temperature), float(top_p), int(max_tokens), int(seed)

    def as_dict(self) -> dict:
        return {"round_size": self.round_size, "oversample": self.oversample, "temperature": self.temperature,
                "top_p": self.top_p, "max_tokens": self.max_tokens, "seed": self.seed, "task_types": TASK_TYPES}

    def per_type(self) -> int:
        return max(1, self.round_size // len(TASK_TYPES))

    def samples_per_type(self) -> int:
        return math.ceil(self.per_type() * self.oversample)


def user_prefix(tokenizer, system: str | None) -> list[int]:
    """The chat template up to the user turn's text: the system turn (the task's, or the template's
    default), then ``<|im_start|>user\\n``."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("Magpie synthesis needs a chat template (an instruct model); give --prompts a jsonl file instead")
    marker = "\x00MAGPIE\x00"
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": marker}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    prefix = rendered[: rendered.index(marker)]
    return list(tokenizer(prefix, add_special_tokens=False)["input_ids"])


def keep_reason(text: str, finished: bool) -> str | None:
    """Why a synthesised user turn is dropped (``None``: keep it)."""
    if not finished:
        return "unfinished"
    if "<|" in text or "|>" in text:
        return "template_tokens"
    words = normalise(text)
    if not 3 <= len(words) <= 300:
        return "length"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * max(1, sum(not ch.isspace() for ch in text)):
        return "not_text"
    trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if trigrams and len(set(trigrams)) < 0.5 * len(trigrams):
        return "repetition"
    if text.strip().lower().startswith(_ANSWER_OPENINGS):
        return "answer_like"
    return None


class NearDuplicates:
    """Kept prompts, indexed by word trigrams: exact (normalised) and Jaccard >= 0.6 duplicates."""

    def __init__(self) -> None:
        self.exact: set[str] = set()
        self.index: dict[int, set[int]] = defaultdict(set)
        self.sizes: list[int] = []

    def seen(self, text: str) -> bool:
        words = normalise(text)
        if " ".join(words) in self.exact:
            return True
        grams = {_hash(g) for g in _ngrams(words, 3)}
        shared: Counter = Counter()
        for h in grams:
            shared.update(self.index.get(h, ()))
        return any(common / (len(grams) + self.sizes[k] - common) >= NEAR_DUPLICATE_JACCARD for k, common in shared.items())

    def add(self, text: str) -> None:
        words = normalise(text)
        self.exact.add(" ".join(words))
        grams = {_hash(g) for g in _ngrams(words, 3)}
        number = len(self.sizes)
        self.sizes.append(len(grams))
        for h in grams:
            self.index[h].add(number)


def _strip(text: str) -> str:
    return re.sub(r"\s+\Z", "", text.strip())


def synthesise_round(folder: Path, number: int, settings: MagpieSettings, tokenizer, sample, benchmark: SpecBenchIndex,
                     dedupe: NearDuplicates, log=print) -> list[dict]:
    """Round ``number``'s kept prompts (``{"id", "category", "text"}``), read back when the round exists.

    ``sample(prefixes, seeds) -> [(token ids, finished)]`` draws one user turn per prefix (vLLM or
    transformers; see :mod:`specplug.train.data`). ``dedupe`` holds earlier rounds' prompts and
    receives this round's."""
    folder.mkdir(parents=True, exist_ok=True)
    rows_path, stats_path = folder / f"round-{number:04d}.jsonl", folder / f"round-{number:04d}.json"
    if rows_path.exists() and stats_path.exists():
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
        for row in rows:
            dedupe.add(row["text"])
        return rows
    prefixes, seeds, types = [], [], []
    for t, (task, system) in enumerate(TASK_TYPES.items()):
        prefix = user_prefix(tokenizer, system)
        for i in range(settings.samples_per_type()):
            prefixes.append(prefix)
            seeds.append((settings.seed * 1_000_003 + number) * 10_007 + t * 1_009 + i)
            types.append(task)
    outputs = sample(prefixes, seeds)
    dropped: Counter = Counter()
    kept_per_type: Counter = Counter()
    rows = []
    for task, seed, (ids, finished) in zip(types, seeds, outputs):
        text = _strip(tokenizer.decode(ids, skip_special_tokens=True))
        reason = keep_reason(text, finished)
        if reason is None and kept_per_type[task] >= settings.per_type():
            reason = "balance"
        if reason is None and dedupe.seen(text):
            reason = "duplicate"
        if reason is None and benchmark.match(text) is not None:
            reason = "spec_bench_overlap"
        if reason is not None:
            dropped[reason] += 1
            continue
        dedupe.add(text)
        kept_per_type[task] += 1
        rows.append({"id": f"magpie-{number:04d}-{len(rows):04d}", "category": task, "text": text, "seed": seed})
    stats = {"round": number, "sampled": len(prefixes), "sampled_tokens": sum(len(ids) for ids, _ in outputs), "kept": len(rows), "dropped": dict(dropped),
             "kept_per_type": dict(kept_per_type)}
    tmp = rows_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(rows_path)
    stats_path.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    log(f"magpie round {number}: kept {len(rows)} of {len(prefixes)} sampled user turns (dropped {dict(dropped)})")
    return rows
