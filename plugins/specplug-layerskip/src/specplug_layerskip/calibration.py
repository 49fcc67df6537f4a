"""Calibration: find a skip set (and a confidence threshold) on prompts the benchmarks never use.

Prompts (:func:`calibration_prompts`). Every specplug benchmark and test takes the *first* prompts of
each Spec-Bench category (``spec-bench:N`` is the first N per category; the model-drafter benchmark
uses ``spec-bench:2``, the engine tests the first prompt of the first three categories). Calibration
skips the first :data:`EXCLUDED_PER_CATEGORY` (= 5) prompts of every category, so it is disjoint from
every subset up to ``spec-bench:5``, and takes the rest round-robin across categories.

Evaluation (:func:`teacher_forced`). Greedy self-speculation is fully determined by where the draft's
greedy token equals the target's: the target's greedy continuation of each calibration prompt is
decoded once, then a candidate skip set runs over prompt + continuation in *one* forward, which gives
at every position the draft's greedy token and its confidence (largest probability) given the true
prefix. Its KV cache is exactly what a draft cache holds after those tokens, and a drafted token is
only kept while every earlier one matched, so the accepted length of every step of speculative decoding
follows from these two arrays without decoding (:func:`simulate`). Only the number of tokens drafted
after the first rejected one is estimated (the confidences given the true prefix stand in for those
given the wrong token).

Objective (:func:`objective`). A cost model in target steps: a draft forward costs
:func:`~specplug_layerskip.skipping.draft_cost` (the kept blocks' share of the target's
multiply-adds, the LM head included), and verifying ``n`` drafted tokens costs
``1 + verify_cost_per_token * n`` target steps (on this 2-core CPU a forward of 6 tokens costs about
1.5 of one token, so 0.1 per token). The search maximises the **yield** of speculation: accepted
tokens per target step spent on it (draft forwards plus the extra verification cost). Each
accepted token saves one target step, so speculation pays (speedup > 1) exactly when the yield is
above 1, and the predicted speedup is reported beside it. The speedup itself is not the objective:
on a target where no skip set pays (SmolLM2-135M: every set predicts < 1x), its maximum is a draft
that stops before every token and costs little, which measures nothing; the yield of not drafting is
0. Acceptance alone would pick a draft that skips nothing; ``acceptance x skipped fraction`` has no
notion of what a step costs. The threshold is optimised for each skip set by a scan
(:func:`best_threshold`), since the best stopping point depends on how well the draft's confidence
predicts its acceptance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from specplug.counts import AcceptanceCounts
from specplug.kit.drafting import ReducedVocab
from specplug_layerskip.profile import SkipSet
from specplug_layerskip.skipping import draft_cost, skip_view

__all__ = [
    "EXCLUDED_PER_CATEGORY",
    "Sequence_",
    "THRESHOLDS",
    "best_threshold",
    "calibration_prompts",
    "objective",
    "reference_sequences",
    "simulate",
    "teacher_forced",
]

EXCLUDED_PER_CATEGORY = 5
THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Sequence_:
    """One calibration prompt with the target's greedy continuation."""

    prompt: list[int]
    continuation: list[int]
    label: str = ""


def calibration_prompts(tokenizer, count: int, max_prompt_tokens: int = 160) -> list[tuple[str, list[int]]]:
    """``(question id, chat-template token ids)`` for ``count`` Spec-Bench prompts outside every
    benchmark and test subset (see the module docstring), round-robin over the categories, each at
    most ``max_prompt_tokens`` long (shorter prompts keep calibration to minutes on a CPU)."""
    from specplug.bench.prompts import spec_bench_path

    rows = [json.loads(line) for line in spec_bench_path().read_text().splitlines() if line.strip()]
    by_category: dict[str, list[dict]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(row)
    pools = [rows_[EXCLUDED_PER_CATEGORY:] for rows_ in by_category.values()]
    picked: list[tuple[str, list[int]]] = []
    position = [0] * len(pools)
    while len(picked) < count and any(position[i] < len(pool) for i, pool in enumerate(pools)):
        for i, pool in enumerate(pools):
            while position[i] < len(pool):
                row = pool[position[i]]
                position[i] += 1
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": row["turns"][0]}], tokenize=False, add_generation_prompt=True
                )
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(ids) <= max_prompt_tokens:
                    picked.append((str(row["question_id"]), list(ids)))
                    break
            if len(picked) == count:
                break
    return picked


def reference_sequences(engine, prompts: Sequence[tuple[str, list[int]]], new_tokens: int) -> list[Sequence_]:
    """The target's plain greedy continuation of every prompt (reference engine)."""
    results = engine.generate([p for _, p in prompts], max_new_tokens=new_tokens)
    return [Sequence_(list(p), list(r.token_ids), label) for (label, p), r in zip(prompts, results)]


@torch.inference_mode()
def teacher_forced(view, sequences: Sequence[Sequence_], vocab: ReducedVocab | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every sequence: ``(match, confidence)`` over its continuation, where ``match[j]`` says the
    draft's greedy token after ``prompt + continuation[:j]`` is ``continuation[j]`` and
    ``confidence[j]`` is the draft's largest probability there."""
    out = []
    device = next(view.parameters()).device
    for seq in sequences:
        m = len(seq.continuation)
        if m == 0:
            out.append((np.zeros(0, dtype=bool), np.zeros(0)))
            continue
        ids = torch.tensor([seq.prompt + seq.continuation], device=device)
        logits = view(input_ids=ids, use_cache=False, logits_to_keep=m + 1).logits[0, :m].float()  # rows at P-1 .. P+m-2
        probs = torch.softmax(logits, -1)
        confidence, index = probs.max(-1)
        predicted = index.cpu().numpy()
        if vocab is not None:
            predicted = vocab.token_ids[predicted]
        out.append((predicted == np.asarray(seq.continuation), confidence.cpu().numpy().astype(np.float64)))
    return out


@dataclass
class SimulatedRun(AcceptanceCounts):
    """The counts of a simulated run (:class:`~specplug.counts.AcceptanceCounts`: drafted, accepted,
    steps, new tokens, hence MAT and acceptance) and its cost in target steps."""

    cost: float = 0.0  # in target steps

    @property
    def speedup(self) -> float:
        return self.new_tokens / self.cost if self.cost else 0.0

    @property
    def overhead(self) -> float:
        """Target steps spent on speculation: draft forwards and extra verification cost."""
        return self.cost - self.steps

    @property
    def yield_(self) -> float:
        """Accepted tokens per target step of overhead (> 1: speculation pays)."""
        return self.accepted / self.overhead if self.overhead > 0 else 0.0

    @property
    def mat(self) -> float:
        return super().mat or 0.0

    @property
    def acceptance(self) -> float:
        """The acceptance rate, 0.0 when nothing was drafted."""
        return self.acceptance_rate or 0.0


def simulate(arrays, k: int, threshold: float, step_cost: float, verify_cost_per_token: float) -> SimulatedRun:
    """Greedy speculative decoding with a confidence-stopped chain draft over ``arrays`` (from
    :func:`teacher_forced`), as the reference engine runs it: budget ``min(k, left - 1)``, one draft
    forward per drafted token plus the sync forward (``min(n + 1, budget)``)."""
    run = SimulatedRun()
    for match, confidence in arrays:
        m, j = len(match), 0
        while j < m:
            budget = min(k, m - j - 1)
            n = accepted = 0
            alive = True
            while n < budget and confidence[j + n] >= threshold:
                alive = alive and bool(match[j + n])
                accepted += alive
                n += 1
            forwards = min(n + 1, budget) if budget > 0 else 0
            run.cost += forwards * step_cost + 1.0 + verify_cost_per_token * n
            run.drafted += n
            run.accepted += accepted
            run.new_tokens += accepted + 1
            run.steps += 1
            j += accepted + 1
    return run


def best_threshold(arrays, k: int, step_cost: float, verify_cost_per_token: float, thresholds=THRESHOLDS) -> tuple[float, SimulatedRun]:
    """The threshold (from ``thresholds``) with the largest simulated yield, and its run."""
    runs = [(t, simulate(arrays, k, t, step_cost, verify_cost_per_token)) for t in thresholds]
    return max(runs, key=lambda item: item[1].yield_)


def objective(
    model, sequences: Sequence[Sequence_], k: int, verify_cost_per_token: float, vocab: ReducedVocab | None = None
) -> Callable[[SkipSet], tuple[float, float, SimulatedRun]]:
    """``evaluate(skip) -> (yield, threshold, run)``: the yield of ``skip`` with its best threshold
    on ``sequences`` (``run`` has the predicted speedup, acceptance and MAT too)."""
    draft_vocab = len(vocab) if vocab is not None else None

    def evaluate(skip: SkipSet) -> tuple[float, float, SimulatedRun]:
        arrays = teacher_forced(skip_view(model, skip, vocab), sequences, vocab)
        threshold, run = best_threshold(arrays, k, draft_cost(model.config, skip, draft_vocab), verify_cost_per_token)
        return run.yield_, threshold, run

    return evaluate


def matchness(model, sequences: Sequence[Sequence_], skip: SkipSet) -> float:
    """SWIFT's score: the fraction of context positions where the draft's greedy token is the next token."""
    arrays = teacher_forced(skip_view(model, skip), sequences)
    total = sum(len(m) for m, _ in arrays)
    return float(sum(int(m.sum()) for m, _ in arrays) / total) if total else 0.0


def elapsed(start: float) -> float:
    return time.perf_counter() - start
