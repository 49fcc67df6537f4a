"""Shared fixtures: tiny digits models trained in seconds (the real ones take minutes)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_digits_dir(tmp_path_factory):
    """A folder like ``train-digits`` makes, with a 1-layer target and a smaller drafter, briefly trained."""
    from specplug_image.train import ModelSize, TrainConfig, train_digits

    cfg = TrainConfig(
        target_steps=150, draft_steps=40, batch_size=32, lr=1e-2,
        target=ModelSize(hidden=32, layers=1, heads=1, intermediate=64),
        draft=ModelSize(hidden=16, layers=1, heads=1, intermediate=32),
    )
    return train_digits(tmp_path_factory.mktemp("digits"), cfg, progress=False)


@pytest.fixture(scope="session")
def tiny_digits(tiny_digits_dir):
    """``(target, draft)`` models of :func:`tiny_digits_dir`."""
    from specplug_image.train import load_digits_models

    return load_digits_models(tiny_digits_dir)
