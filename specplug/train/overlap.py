"""Keep the benchmark out of the training data: every training prompt is checked against Spec-Bench.

Two tests, on text normalised to lower-case words (punctuation dropped):

- **exact**: the normalised prompt equals a normalised Spec-Bench turn;
- **near-duplicate**: the prompt shares a word :data:`NGRAM`-gram (8 words) with a Spec-Bench turn,
  or the Jaccard similarity of their word-trigram sets is at least :data:`JACCARD` (0.5).

N-grams that occur in :data:`BOILERPLATE_MIN` (3) or more distinct Spec-Bench questions are
instruction boilerplate ("Translate German to English:", RAG's answer-from-the-passages frame), not
content; they are left out of the n-gram test so a prompt is not flagged for sharing a task frame.
The reference is every turn of every Spec-Bench question, except questions that are themselves in
the training set (``spec-bench-train`` is Spec-Bench without the benchmark's prompts: it is checked
against the held-back ones).

:func:`check_prompts` returns the record the data manifest stores (what was checked, against what,
how many matched, examples); :func:`refuse_overlap` raises when anything matched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BOILERPLATE_MIN", "JACCARD", "NGRAM", "OverlapError", "SpecBenchIndex", "check_prompts", "normalise"]

NGRAM = 8
JACCARD = 0.5
BOILERPLATE_MIN = 3
_WORD = re.compile(r"[a-z0-9]+")


class OverlapError(ValueError):
    """A training prompt set that overlaps the benchmark; the message names the prompts and the fix."""


def normalise(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _hash(gram: tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(gram).encode(), digest_size=8).digest(), "little")


@dataclass
class SpecBenchIndex:
    """Spec-Bench's turns, indexed for the two tests (built once per check)."""

    path: str
    exclude_ids: frozenset = frozenset()
    exact: set = field(default_factory=set)
    long_grams: dict = field(default_factory=dict)  # hash of an 8-gram -> question id
    tri_index: dict = field(default_factory=lambda: defaultdict(set))  # hash of a trigram -> turn numbers
    tri_sets: list = field(default_factory=list)
    turn_ids: list = field(default_factory=list)
    boilerplate: int = 0
    questions: int = 0

    @classmethod
    def build(cls, path: str | Path | None = None, exclude_ids: Iterable[str] = ()) -> SpecBenchIndex:
        from specplug.bench.prompts import spec_bench_path

        path = Path(path) if path else spec_bench_path()
        index = cls(str(path), frozenset(str(i) for i in exclude_ids))
        seen_in: dict[int, set] = defaultdict(set)
        turns = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            qid = str(row["question_id"])
            if qid in index.exclude_ids or f"spec-bench-{qid}" in index.exclude_ids:
                continue
            index.questions += 1
            for turn in row.get("turns", []):
                words = normalise(turn)
                turns.append((qid, words))
                for gram in _ngrams(words, NGRAM):
                    seen_in[_hash(gram)].add(qid)
        for qid, words in turns:
            index.exact.add(" ".join(words))
            for gram in _ngrams(words, NGRAM):
                h = _hash(gram)
                if len(seen_in[h]) < BOILERPLATE_MIN:
                    index.long_grams[h] = qid
            tri = {_hash(g) for g in _ngrams(words, 3)}
            number = len(index.tri_sets)
            index.tri_sets.append(tri)
            index.turn_ids.append(qid)
            for h in tri:
                index.tri_index[h].add(number)
        index.boilerplate = sum(1 for qids in seen_in.values() if len(qids) >= BOILERPLATE_MIN)
        return index

    def match(self, text: str) -> dict | None:
        """``{"kind": exact|ngram|jaccard, "question_id", ...}`` for the first test ``text`` fails, else None."""
        words = normalise(text)
        if " ".join(words) in self.exact:
            return {"kind": "exact"}
        for gram in _ngrams(words, NGRAM):
            qid = self.long_grams.get(_hash(gram))
            if qid is not None:
                return {"kind": f"{NGRAM}-gram", "question_id": qid, "ngram": " ".join(gram)}
        tri = {_hash(g) for g in _ngrams(words, 3)}
        if tri:
            shared: dict[int, int] = defaultdict(int)
            for h in tri:
                for number in self.tri_index.get(h, ()):
                    shared[number] += 1
            for number, common in shared.items():
                jaccard = common / (len(tri) + len(self.tri_sets[number]) - common)
                if jaccard >= JACCARD:
                    return {"kind": "jaccard", "question_id": self.turn_ids[number], "jaccard": round(jaccard, 3)}
        return None

    def describe(self) -> dict:
        return {"reference": self.path, "reference_questions": self.questions,
                "excluded_reference_questions": len(self.exclude_ids),
                "tests": {"exact": "normalised text equal to a Spec-Bench turn",
                          "ngram": f"a shared word {NGRAM}-gram (n-grams in >= {BOILERPLATE_MIN} Spec-Bench questions "
                                   f"are boilerplate and skipped: {self.boilerplate})",
                          "jaccard": f"word-trigram Jaccard >= {JACCARD}"}}


def check_prompts(items: Iterable[tuple[str, str]], index: SpecBenchIndex) -> dict:
    """Check ``(prompt id, text)`` pairs; the manifest's record: counts, matched ids, a few examples."""
    checked, matched, examples = 0, [], []
    for pid, text in items:
        checked += 1
        hit = index.match(text)
        if hit is not None:
            matched.append(pid)
            if len(examples) < 5:
                examples.append({"id": pid, **hit, "prompt": text[:160]})
    return {**index.describe(), "checked": checked, "overlapping": len(matched), "overlapping_ids": matched[:50],
            "examples": examples}


def refuse_overlap(record: dict) -> None:
    if record["overlapping"]:
        shown = "; ".join(f"{e['id']} ({e['kind']}{', question ' + e['question_id'] if 'question_id' in e else ''})"
                          for e in record["examples"])
        raise OverlapError(f"{record['overlapping']} of {record['checked']} training prompts overlap Spec-Bench, the benchmark "
                           f"({shown}); remove them from the prompt set (or use --prompts magpie, which drops them as it "
                           "synthesises)")
