"""Fixtures: tiny random Llamas and layer-skip profiles calibrated for them in seconds."""

from __future__ import annotations

import pytest

from specplug.testing import repetitive_prompts, tiny_llama


def tiny_profile(model, method: str, path, threshold_scan: bool = True):
    """Calibrate ``method`` for ``model`` on repetitive token prompts and save it at ``path``."""
    from specplug_layerskip.calibrate import calibrate
    from specplug_layerskip.profile import save_profile

    prompts = [(f"tiny-{i}", p) for i, p in enumerate(repetitive_prompts(3, model.config.vocab_size, seed=11))]
    profile = calibrate(model, None, method, "tiny", prompts=prompts, new_tokens=16, k=4, evaluations=6, texts=[],
                        cache_continuations=False)
    return save_profile(profile, path)


@pytest.fixture(scope="session")
def make_tiny_profile():
    """:func:`tiny_profile`, for tests that calibrate their own model (a fixture, so that the tests do not
    import this conftest by name: from the repository root another conftest has that name)."""
    return tiny_profile


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_llama(vocab_size=128, seed=1, num_layers=4)


@pytest.fixture(scope="session")
def tiny_profiles(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("profiles")
    return {method: tiny_profile(tiny_model, method, folder / f"{method}.json") for method in ("draft_verify", "swift")}
