"""Calibration data for a reduced draft vocabulary.

The draft scores only the ``N`` target ids most frequent in calibration text. That text must not be
a benchmark's prompts (the draft would be tuned to what it is measured on), so it is Spec-Bench's
*held-out* part: in every category the prompts from position :data:`CALIBRATION_SKIP` on (file
order), every turn. ``spec-bench:N`` (the first N of each category, what specplug's benchmarks and
tests run) never includes them for ``N <= CALIBRATION_SKIP``.

A ``vocab_file`` (a JSON list of target ids, most frequent first, e.g. counted in the target's own
generations) replaces the held-out prompts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATION_SKIP", "calibration_texts", "calibration_vocab", "read_vocab_file"]

CALIBRATION_SKIP = 5
"""Held-out = Spec-Bench prompts from this position on in each category; benchmark subsets take fewer."""


def calibration_texts(skip: int = CALIBRATION_SKIP) -> tuple[list[str], list[str]]:
    """``(texts, prompt ids)`` of the held-out Spec-Bench prompts (every turn of each)."""
    from specplug.bench.prompts import spec_bench_path

    seen: dict[str, int] = {}
    texts: list[str] = []
    ids: list[str] = []
    for line in spec_bench_path().read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rank = seen.get(row["category"], 0)
        seen[row["category"]] = rank + 1
        if rank < skip:
            continue
        ids.append(str(row["question_id"]))
        texts.extend(t for t in row.get("turns", []) if isinstance(t, str) and t)
    return texts, ids


def calibration_vocab(tokenizer: Any, size: int, vocab_size: int, always: Iterable[int] = ()):
    """The ``size`` ids most frequent in the held-out prompts (tokenized by ``tokenizer``), plus ``always``;
    returns ``(ReducedVocab, description of the source)``."""
    from specplug.kit.drafting import ReducedVocab

    texts, ids = calibration_texts()
    sequences = tokenizer(texts, add_special_tokens=False)["input_ids"]
    vocab = ReducedVocab.most_frequent(sequences, size, vocab_size, always=always)
    tokens = sum(len(s) for s in sequences)
    source = f"held-out Spec-Bench prompts (position >= {CALIBRATION_SKIP} in each category: {len(ids)} prompts, {tokens} tokens)"
    return vocab, source


def read_vocab_file(path: str | Path, vocab_size: int) -> np.ndarray:
    """Target ids from a JSON list (or ``{"token_ids": [...]}``), most frequent first."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"vocab_file {path}: cannot read it ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"vocab_file {path}: not JSON ({err.msg})") from None
    if isinstance(data, dict):
        data = data.get("token_ids")
    if not isinstance(data, list) or not data or not all(isinstance(t, int) for t in data):
        raise ValueError(f"vocab_file {path}: expected a non-empty JSON list of token ids")
    ids = np.asarray(data, dtype=np.int64)
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"vocab_file {path}: ids must lie in [0, {vocab_size}) (the target's vocabulary)")
    return ids
