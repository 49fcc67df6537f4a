"""Fixtures of specplug-draft's tests: one torch thread, a fresh registry per test."""

from __future__ import annotations

import pytest

from specplug.registry import reset_registry
from specplug.testing import limit_torch_threads


def pytest_configure(config):
    limit_torch_threads()


@pytest.fixture(autouse=True)
def _fresh_registry():
    reset_registry()
    yield
    reset_registry()
