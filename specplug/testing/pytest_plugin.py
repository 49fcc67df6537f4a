"""specplug's pytest plugin: what every specplug test suite, core or plugin package, shares.

Registered as the ``pytest11`` entry point ``specplug`` of the ``specplug`` distribution, so pytest
loads it in any environment where specplug is installed; test folders need no ``conftest.py`` for:

- the markers :data:`MARKERS`: ``slow`` (the real SmolLM2 model), ``vllm`` (real vLLM engines),
  ``smoke`` (the fast tier's one vLLM test), ``browser`` and ``quickstart``;
- the hypothesis profile of the test tier, ``fast`` unless ``SPECPLUG_TEST_TIER=full`` (see
  :mod:`specplug.testing.tiers`);
- one torch thread: tiny test models are dominated by per-op overhead, which threads only add to
  (one thread was 10-35x faster for them on a small shared machine);
- a registry built afresh around every test (the autouse fixture :func:`fresh_registry`), so a test
  never sees plugins another test registered;
- torch's grad mode restored after every test (:func:`restore_grad_mode`): a test that switches
  gradients off globally would otherwise break every training test after it in the same process.

Run pytest with ``-p no:specplug`` to leave it out.
"""

from __future__ import annotations

import pytest

#: the markers specplug's suites use (the root pyproject.toml lists the same, for reading)
MARKERS = {
    "slow": "uses the real SmolLM2 model (converted once into the cache)",
    "vllm": "needs vLLM installed; starts real vLLM engines",
    "smoke": "the one vLLM test of the fast tier (one engine pair, identical output)",
    "browser": "drives the built docs site in headless Chromium (full tier)",
    "quickstart": "runs every runnable card's quickstart as printed (full tier)",
}


def pytest_configure(config: pytest.Config) -> None:
    from specplug.testing.models import limit_torch_threads
    from specplug.testing.tiers import register_hypothesis_profiles, tier

    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    try:
        tier()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    try:
        register_hypothesis_profiles()
    except ImportError:  # hypothesis is a test extra; suites without property tests run without it
        pass
    limit_torch_threads()


def pytest_report_header(config: pytest.Config) -> str:
    from specplug.testing.tiers import TIER_ENV, tier

    return f"specplug test tier: {tier()} ({TIER_ENV})"


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test sees a registry built from the current environment, not one cached by another test."""
    from specplug.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture(autouse=True)
def restore_grad_mode():
    """Put torch's global grad mode back as it was before the test (only where torch is loaded)."""
    import sys

    torch = sys.modules.get("torch")
    before = torch.is_grad_enabled() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_grad_enabled(True if before is None else before)
