"""Class-conditional image generation with the reference engine, any drafter and any verifier.

:func:`sample_images` asks the engine for 64 pixel tokens after each class token and returns the
images with the run's statistics (MAT, acceptance, time). :func:`build_setting` turns a setting name
used by the CLI and the benchmark into ``(proposer, verifier)``::

    plain                       plain sampling (no drafts): the reference
    draft                       1-layer drafter + exact speculative sampling (lossless)
    draft+lantern               1-layer drafter + LANTERN relaxed acceptance (lossy)
    sjd                         Speculative Jacobi Decoding + exact speculative sampling
    sjd+lantern                 SJD's drafts + LANTERN
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from specplug_image.digits import DigitsTokenizer

__all__ = ["DRAFTERS", "SampleRun", "build_setting", "sample_images"]

DRAFTERS = ("plain", "draft", "sjd")


@dataclass
class SampleRun:
    """Generated images and what producing them cost."""

    images: np.ndarray  # [N, 8, 8] int64 grey levels
    labels: np.ndarray  # [N] the classes asked for
    stats: Any  # specplug.engine.GenerationStats, merged over the requests
    seconds: float
    invalid_tokens: int  # non-pixel tokens sampled where a pixel belongs (drawn as background)


def build_setting(drafter: str, target, draft_model=None, verifier: str = "speculative_sampling",
                  lantern: dict | None = None, sjd: dict | None = None, seed: int = 0):
    """``(proposer or None, verifier)`` for a drafter name and a verifier id (``lantern`` options apply
    when ``verifier == "lantern"``; ``sjd`` options when ``drafter == "sjd"``). Options are validated
    by the registry's specs, so a bad value raises :class:`specplug.methods.OptionsError` naming it.

    SJD and LANTERN are built by id from the registry (their plugins, never imported here); LANTERN
    reads its latent neighbourhoods from the target's folder (``target.name_or_path``)."""
    from specplug.registry import get_registry
    from specplug_image.drafter import DraftModelProposer

    if drafter == "plain":
        proposer = None
    elif drafter == "draft":
        if draft_model is None:
            raise ValueError("the 'draft' drafter needs the draft model (train-digits trains it beside the target)")
        proposer = DraftModelProposer(draft_model, temperature=1.0, seed=seed)
    elif drafter == "sjd":
        proposer = get_registry().method("sjd").build({"seed": seed, **(sjd or {})})
    else:
        raise ValueError(f"unknown drafter {drafter!r}; choose one of: {', '.join(DRAFTERS)}")
    if verifier == "lantern":
        spec = get_registry().verifier("lantern")
        options = spec.validate_options(lantern or {})  # a bad option is named before the target is read
        folder = getattr(target, "name_or_path", "")
        if not folder:
            raise ValueError("lantern reads the target's token embeddings from its folder: load the target with from_pretrained")
        rule: Any = spec.build(options.model_copy(update={"model": str(folder)}))
    else:
        from specplug.engine import resolve_verifier

        rule = resolve_verifier(verifier)
    return proposer, rule


def sample_images(engine, labels, proposer=None, verifier: Any = "speculative_sampling", k: int = 4,
                  temperature: float = 1.0, seed: int = 0) -> SampleRun:
    """One image per entry of ``labels`` (request ``i`` samples with seed ``seed + i``)."""
    from specplug.engine import GenerationStats
    from specplug.protocols import SamplingParams

    tok = DigitsTokenizer()
    labels = np.asarray(labels, dtype=np.int64)
    prompts = [tok.prompt(int(label)) for label in labels]
    start = time.perf_counter()
    results = engine.generate(prompts, proposer, verifier, k=k, max_new_tokens=tok.image_len,
                              sampling=SamplingParams(temperature=temperature), seed=seed)
    seconds = time.perf_counter() - start
    decoded = [tok.decode_generated(r.token_ids) for r in results]
    images = np.stack([img for img, _ in decoded])
    invalid = sum(bad for _, bad in decoded)
    return SampleRun(images, labels, GenerationStats.merge(r.stats for r in results), seconds, invalid)
