"""Fixtures of specplug-eagle's tests."""

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
