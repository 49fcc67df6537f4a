"""Which prompts the heads are trained on: Spec-Bench minus everything the benchmarks measure.

Every benchmark and test in specplug takes Spec-Bench prompts from the *front* of each category
(``spec-bench:N`` = the first N per category in file order; the engine conformance tests take the
first prompt of each category; the issue-11 benchmark uses 2 per category). Training uses the
rest: ``spec-bench-train`` drops the first :data:`EXCLUDED_PER_CATEGORY` (5) prompts of every
category, a generous margin over the 1-3 per category the benchmarks use. That leaves 5 prompts
in each of the 8 MT-bench categories (10 each) and 75 in each of translation, summarization, qa,
math_reasoning and rag (80 each): 415 prompts. A benchmark that measures on more than 5 prompts
per category would overlap the training set; :func:`check_disjoint` says so.

``--limit N`` takes prompts round-robin over the categories (1st of each, then 2nd of each, ...),
so a small budget still covers every category.
"""

from __future__ import annotations

from specplug.bench.prompts import Prompt, PromptError, load_prompts, one_per_category_first

__all__ = ["EXCLUDED_PER_CATEGORY", "TRAIN_SET", "check_disjoint", "training_prompts"]

TRAIN_SET = "spec-bench-train"
EXCLUDED_PER_CATEGORY = 5


def _spec_bench_split(exclude_per_category: int) -> list[Prompt]:
    prompts, _ = load_prompts("spec-bench")
    seen: dict[str, int] = {}
    kept = []
    for prompt in prompts:
        seen[prompt.category] = seen.get(prompt.category, 0) + 1
        if seen[prompt.category] > exclude_per_category:
            kept.append(prompt)
    return kept


def training_prompts(spec: str = TRAIN_SET, limit: int | None = None,
                     exclude_per_category: int = EXCLUDED_PER_CATEGORY) -> tuple[list[Prompt], dict]:
    """The training prompts for a ``--prompts`` value and a description for the manifest.

    ``spec``: ``spec-bench-train`` (Spec-Bench without the first ``exclude_per_category`` of each
    category) or a jsonl file (see :mod:`specplug.bench.prompts`; used as given)."""
    if spec == TRAIN_SET:
        prompts = _spec_bench_split(exclude_per_category)
        source = {"set": TRAIN_SET, "source": "Spec-Bench question.jsonl (first turn)",
                  "excluded_first_per_category": exclude_per_category}
    else:
        if spec.startswith("spec-bench"):
            raise PromptError(f"--prompts {spec!r}: the benchmark prompts are not for training; use {TRAIN_SET} or a jsonl file")
        prompts, label = load_prompts(spec)
        source = {"set": label, "source": spec}
    prompts = one_per_category_first(prompts)
    if limit is not None:
        if limit < 1:
            raise PromptError(f"--limit must be at least 1, got {limit}")
        prompts = prompts[:limit]
    source["ids"] = [p.id for p in prompts]
    return prompts, source


def check_disjoint(per_category: int, exclude_per_category: int = EXCLUDED_PER_CATEGORY) -> None:
    """Raise :class:`PromptError` when ``spec-bench:per_category`` would overlap the training split."""
    if per_category > exclude_per_category:
        raise PromptError(
            f"spec-bench:{per_category} overlaps the heads' training prompts (training skips only the first "
            f"{exclude_per_category} per category); measure on at most {exclude_per_category} per category"
        )
