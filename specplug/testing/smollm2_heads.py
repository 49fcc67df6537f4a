"""SmolLM2 training data and heads on the ``tiny`` budget, made once into specplug's cache.

The slow tests of the head plugins (losslessness on SmolLM2 with a trained head) share one small data
set: 4 training prompts x 32 new tokens, reference engine, the final layer's states. ``specplug
train data`` resumes a complete folder instantly, so the first test makes it and the others reuse
it; each head is retrained on the tiny budget (seconds) into a folder of its own beside it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["smollm2_tiny_data", "smollm2_tiny_head"]


def smollm2_tiny_data() -> Path:
    """The shared data folder (made on first use)."""
    from specplug.models import cache_dir
    from specplug.train.data import DataConfig, build_data

    out = cache_dir() / "test-data" / "smollm2-tiny-final-layer"
    build_data(DataConfig(model="smollm2-135m", out=str(out), limit=4, max_new_tokens=32, engine="reference",
                          layers=[-1], quiet=True), log=lambda message: None)
    return out


def smollm2_tiny_head(method: str, **options) -> Path:
    """A ``method`` head for SmolLM2 trained on :func:`smollm2_tiny_data` with the ``tiny`` budget."""
    from specplug.train.trainer import TrainConfig, train_head

    data = smollm2_tiny_data()
    out = data.parent / "smollm2-tiny-heads" / method
    return train_head(TrainConfig(method=method, model="smollm2-135m", data=str(data), out=str(out), budget="tiny",
                                  quiet=True, restart=True, **options), log=lambda message: None)
