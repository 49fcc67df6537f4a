"""Prompts for lossless checks: repetitive token-id prompts and Spec-Bench chat prompts."""

from __future__ import annotations

import json

__all__ = ["repetitive_prompts", "spec_bench_chat_prompts"]


def repetitive_prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """``n`` token-id prompts, each a short random phrase said three times (plus its first two tokens),
    so that lookup-based drafters have something to look up from step one. Ids are in ``[3, vocab)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        phrase = rng.integers(3, vocab, size=int(rng.integers(3, 7))).tolist()
        prompts.append(phrase * 3 + phrase[:2])
    return prompts


def spec_bench_chat_prompts(tokenizer, n: int) -> list[list[int]]:
    """Token ids of one Spec-Bench prompt from each of the first ``n`` categories, in ``tokenizer``'s chat
    template (first turn only). Finds question.jsonl with :func:`specplug.bench.prompts.spec_bench_path`."""
    from specplug.bench.prompts import spec_bench_path

    rows = [json.loads(line) for line in spec_bench_path().read_text().splitlines() if line.strip()]
    picked, seen = [], set()
    for row in rows:
        if row["category"] in seen:
            continue
        seen.add(row["category"])
        text = tokenizer.apply_chat_template([{"role": "user", "content": row["turns"][0]}], tokenize=False, add_generation_prompt=True)
        picked.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(picked) == n:
            break
    return picked
