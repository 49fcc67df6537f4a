"""``calibrate``: search a skip set for a target and write its profile (what the CLI command runs).

- ``draft_verify`` (Draft&Verify's offline search): Bayesian optimisation over attention/MLP skip
  masks of any size, maximising the yield of :func:`specplug_layerskip.calibration.objective`
  (accepted tokens per target step of speculation overhead; threshold optimised per mask). The first
  evaluations are structured seeds (middle blocks and alternating layers at a few ratios), then the
  optimiser's suggestions.
- ``swift``: SWIFT's optimiser, offline, to give the on-the-fly search a starting point: for each skip
  ratio, random draws with a Bayesian suggestion every ``bayes_interval``, scored by matchness (the
  fraction of calibration positions whose draft token is the target's). The ratio whose best set
  has the largest yield is kept, with its threshold.

Both then run the chosen profile in the reference engine on the calibration prompts and record the
acceptance and MAT measured there (not the search's prediction).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from specplug_layerskip.calibration import (
    EXCLUDED_PER_CATEGORY,
    Sequence_,
    calibration_prompts,
    objective,
    reference_sequences,
    teacher_forced,
)
from specplug_layerskip.profile import (
    PROFILE_FORMAT,
    CalibrationRecord,
    LayerSkipProfile,
    SkipSet,
    model_fingerprint,
    utc_now,
)
from specplug_layerskip.search import MaskOptimizer, locked_sublayers

__all__ = ["calibrate", "structured_masks", "vocab_ranking"]

RANKED_TOKENS = 16384


def structured_masks(num_layers: int, ratios: Sequence[float] = (0.2, 0.35, 0.5)) -> list[np.ndarray]:
    """Seed masks: a contiguous block of middle layers, and every other middle layer, at each ratio
    (first and last layers always kept)."""
    middle = np.arange(1, num_layers - 1)
    masks = []
    for ratio in ratios:
        count = max(1, int(round(ratio * len(middle))))
        start = (len(middle) - count) // 2
        block = np.zeros(2 * num_layers, dtype=np.int8)
        block[middle[start : start + count]] = 1
        block[num_layers + middle[start : start + count]] = 1
        masks.append(block)
        spread = np.zeros(2 * num_layers, dtype=np.int8)
        chosen = middle[np.linspace(0, len(middle) - 1, count).round().astype(int)]
        spread[chosen] = 1
        spread[num_layers + chosen] = 1
        masks.append(spread)
    return masks


def vocab_ranking(tokenizer, sequences: Sequence[Sequence_], texts: Sequence[str]) -> list[int]:
    """Target ids by frequency in the calibration data (prompts, the target's continuations, and
    ``texts``: the first turns of every prompt calibration may use), most frequent first."""
    counts: Counter[int] = Counter()
    for seq in sequences:
        counts.update(seq.prompt)
        counts.update(seq.continuation)
    if texts:
        for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            counts.update(ids)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [int(t) for t, _ in ranked[:RANKED_TOKENS]]


def calibration_texts(limit: int = 400) -> list[str]:
    """First turns of the Spec-Bench prompts calibration may use (not the first 5 per category)."""
    import json

    from specplug.bench.prompts import spec_bench_path

    seen: dict[str, int] = {}
    texts = []
    for line in spec_bench_path().read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        seen[row["category"]] = seen.get(row["category"], 0) + 1
        if seen[row["category"]] > EXCLUDED_PER_CATEGORY:
            texts.append(row["turns"][0])
    return texts[:limit]


def calibrate(
    model,
    tokenizer,
    method: str = "draft_verify",
    model_name: str = "model",
    prompts: Sequence[tuple[str, list[int]]] | None = None,
    num_prompts: int = 6,
    max_prompt_tokens: int = 160,
    new_tokens: int = 48,
    k: int = 5,
    evaluations: int = 20,
    skip_ratios: Sequence[float] = (0.3, 0.45),
    bayes_interval: int = 3,
    verify_cost_per_token: float = 0.1,
    seed: int = 0,
    texts: Sequence[str] | None = None,
    prompt_source: str | None = None,
    cache_continuations: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> LayerSkipProfile:
    """Search a skip set for ``model`` and return its profile (not yet saved)."""
    from specplug.engine import ReferenceEngine

    if method not in ("draft_verify", "swift"):
        raise ValueError(f"method must be draft_verify or swift, got {method!r}")
    started = time.perf_counter()
    num_layers = int(model.config.num_hidden_layers)
    if num_layers < 2:
        raise ValueError(f"layer skipping needs a model with at least 2 layers; this one has {num_layers}")
    if prompts is None:
        prompts = calibration_prompts(tokenizer, num_prompts, max_prompt_tokens)
        prompt_source = prompt_source or (
            f"Spec-Bench question.jsonl, first turns, round-robin over categories, skipping the first "
            f"{EXCLUDED_PER_CATEGORY} prompts of every category (benchmarks and tests use those), prompts <= {max_prompt_tokens} tokens"
        )
        if texts is None:
            texts = calibration_texts()
    if not prompts:
        raise ValueError("no calibration prompts")
    engine = ReferenceEngine(model, tokenizer)
    sequences = cached_sequences(engine, prompts, new_tokens, model_fingerprint(model), use_cache=cache_continuations)
    log(f"calibration: {len(sequences)} prompts, {sum(len(s.continuation) for s in sequences)} target tokens "
        f"({time.perf_counter() - started:.0f}s)")
    evaluate = objective(model, sequences, k, verify_cost_per_token)
    locked = locked_sublayers(num_layers)
    evaluated = 0
    predicted: dict[bytes, object] = {}

    def score(mask: np.ndarray) -> tuple[float, float]:
        nonlocal evaluated
        skip = SkipSet.from_mask(mask, num_layers)
        value, threshold, run = evaluate(skip)
        evaluated += 1
        predicted[mask.tobytes()] = run
        log(f"  [{evaluated}] skip {skip.size:2d} sub-layers: yield {value:.3f}, predicted speedup {run.speedup:.3f} "
            f"(threshold {threshold}, acceptance {run.acceptance:.2f}, MAT {run.mat:.2f}) {time.perf_counter() - started:.0f}s")
        return value, threshold

    skip_ratio = None
    if method == "draft_verify":
        search = MaskOptimizer(2 * num_layers, locked=locked, keep_one_of=range(num_layers), min_skips=1, max_skips=2 * num_layers - len(locked) - 1, seed=seed)
        seeds = structured_masks(num_layers) if num_layers >= 4 else []
        thresholds: dict[bytes, float] = {}
        for i in range(max(evaluations, 1)):
            mask = seeds[i] if i < len(seeds) else search.suggest()
            value, threshold = score(mask)
            thresholds[mask.tobytes()] = threshold
            search.register(mask, value)
        best_mask, best_value = search.best
        best_threshold = thresholds[best_mask.tobytes()]
        objective_text = (
            f"yield at k={k}: accepted tokens / (draft forwards x draft cost + {verify_cost_per_token} x drafted), "
            "in target steps (speculation pays when > 1); threshold scanned per skip set"
        )
    else:
        best_value, best_mask, best_threshold = -1.0, None, 0.0
        free = 2 * num_layers - len(locked)
        per_ratio = max(2, evaluations // max(len(skip_ratios), 1))
        for ratio in skip_ratios:
            count = max(1, int(round(ratio * free)))
            search = MaskOptimizer(2 * num_layers, locked=locked, keep_one_of=range(num_layers), skips=count, seed=seed)
            for i in range(per_ratio):
                mask = search.suggest() if (i + 1) % bayes_interval == 0 else search.random_mask()
                arrays = teacher_forced(_view(model, mask, num_layers), sequences)
                match = float(np.mean(np.concatenate([m for m, _ in arrays]))) if arrays else 0.0
                search.register(mask, match)
                evaluated += 1
            mask, match = search.best
            value, threshold = score(mask)
            log(f"  ratio {ratio}: best matchness {match:.3f} -> yield {value:.3f}")
            if value > best_value:
                best_value, best_mask, best_threshold, skip_ratio = value, mask, threshold, ratio
        objective_text = (
            f"SWIFT matchness (random search + Bayesian suggestion every {bayes_interval}) per skip ratio "
            f"{list(skip_ratios)}; ratio and threshold chosen by the yield at k={k}"
        )
    skip = SkipSet.from_mask(best_mask, num_layers)
    ranking = vocab_ranking(tokenizer, sequences, texts or [])
    draft = LayerSkipProfile(
        format_version=PROFILE_FORMAT, method=method, model_fingerprint=model_fingerprint(model), model_name=model_name,
        num_layers=num_layers, skip=skip, threshold=best_threshold, skip_ratio=skip_ratio,
        calibration=CalibrationRecord(
            prompt_source=prompt_source or "given prompts", prompt_ids=[label for label, _ in prompts], new_tokens=new_tokens,
            k=k, objective=objective_text, evaluations=evaluated, predicted_yield=best_value,
            predicted_speedup=predicted[best_mask.tobytes()].speedup, acceptance=0.0, mat=0.0,
            drafted=0, accepted=0, seconds=0.0,
        ),
        vocab_ranking=ranking, created=utc_now(),
    )
    drafted, accepted, steps, emitted = measure(engine, draft, sequences, k)
    log(f"measured in the reference engine: acceptance {accepted / max(drafted, 1):.3f} ({accepted}/{drafted}), "
        f"MAT {emitted / max(steps, 1):.3f}")
    record = draft.calibration.model_copy(update={
        "acceptance": accepted / drafted if drafted else 0.0, "mat": emitted / steps if steps else 0.0,
        "drafted": drafted, "accepted": accepted, "seconds": round(time.perf_counter() - started, 1),
    })
    return draft.model_copy(update={"calibration": record})


def cached_sequences(engine, prompts, new_tokens: int, fingerprint: str, use_cache: bool = True) -> list[Sequence_]:
    """The target's greedy continuations of ``prompts``, kept in the cache beside the profiles (the
    draft_verify and swift calibrations of one model share them; they are the target's own output,
    so the fingerprint and the prompts identify them)."""
    import hashlib
    import json

    from specplug.models import cache_dir

    key = hashlib.sha256(json.dumps([new_tokens, [list(map(int, p)) for _, p in prompts]]).encode()).hexdigest()[:16]
    path = cache_dir() / "layerskip" / fingerprint / f"continuations-{key}.json"
    if use_cache and path.exists():
        rows = json.loads(path.read_text())
        return [Sequence_(row["prompt"], row["continuation"], row["label"]) for row in rows]
    sequences = reference_sequences(engine, prompts, new_tokens)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{"label": s.label, "prompt": s.prompt, "continuation": s.continuation} for s in sequences]))
    return sequences


def _view(model, mask, num_layers):
    from specplug_layerskip.skipping import skip_view

    return skip_view(model, SkipSet.from_mask(mask, num_layers))


def measure(engine, profile: LayerSkipProfile, sequences: Sequence[Sequence_], k: int) -> tuple[int, int, int, int]:
    """``(drafted, accepted, steps, emitted)`` of ``profile``'s method in the reference engine, greedy,
    on ``sequences``' prompts; checks the output is the target's greedy continuation."""
    from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
    from specplug_layerskip.proposer import DraftVerifyProposer, SwiftProposer

    if profile.method == "swift":
        proposer = SwiftProposer(SwiftOptions(), profile)
    else:
        proposer = DraftVerifyProposer(DraftVerifyOptions(), profile)
    new_tokens = max(len(s.continuation) for s in sequences)
    results = engine.generate([s.prompt for s in sequences], proposer, k=k, max_new_tokens=new_tokens)
    for seq, result in zip(sequences, results):
        if result.token_ids != seq.continuation[: len(result.token_ids)]:
            raise RuntimeError(f"calibration prompt {seq.label}: speculative output differs from greedy decoding (a bug; please report)")
    drafted = sum(r.stats.drafted for r in results)
    accepted = sum(r.stats.accepted for r in results)
    steps = sum(r.stats.steps for r in results)
    emitted = sum(r.stats.new_tokens for r in results)
    return drafted, accepted, steps, emitted
