"""SmolLM2 training data and heads on the ``tiny`` budget, made once into specplug's cache.

The slow tests of the head plugins (losslessness on SmolLM2 with a trained head) share one small data
set: 4 training prompts x 32 new tokens, reference engine, the final layer's states. ``specplug
train data`` resumes a complete folder instantly, so the first test makes it and the others reuse
it; each head is retrained on the tiny budget (seconds) into a folder of its own beside it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["smollm2_tiny_data", "smollm2_tiny_head", "trained_smollm2_head_or_skip"]

#: the held-out top-1 at the first draft position below which a cached head is too weak for a test to
#: expect accepted drafts (a head trained for a few steps sits near 0; the default hour gave about 0.25)
USEFUL_FIRST_POSITION_TOP1 = 0.05


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


def trained_smollm2_head_or_skip(model, method: str) -> Path:
    """The folder of the ``method`` head ``specplug train`` made for SmolLM2 in the cache, or skip the test.

    A test that expects the target to accept a trained head's drafts needs a head trained long enough: the
    cache may hold one trained for a few steps (a smoke run), whose drafts are rightly all rejected. Such a
    head, or none, skips the test with the command that makes a useful one; the head's own training record
    (held-out top-1 at the first draft position) decides.
    """
    import pytest

    from specplug.kit.head_proposer import default_head_folder
    from specplug.kit.heads import HeadMetadata

    folder = default_head_folder(model, method)
    make = (f"make one with `specplug train data --model smollm2-135m` and `specplug train {method} --model "
            "smollm2-135m` (the default budget)")
    if not folder.exists():
        pytest.skip(f"no trained {method} head for SmolLM2 at {folder}: {make}")
    meta = HeadMetadata.read(folder)
    if (meta.first_position_top1 or 0.0) < USEFUL_FIRST_POSITION_TOP1:
        pytest.skip(f"the {method} head at {folder} is too weak to expect accepted drafts ({meta.training_summary()}; "
                    f"a test needs {USEFUL_FIRST_POSITION_TOP1:.0%}): {make}")
    return folder
