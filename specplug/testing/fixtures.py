"""The fixtures specplug's test suites share, core and plugin packages alike.

A suite's ``conftest.py`` imports them: ``from specplug.testing.fixtures import _fresh_registry,
pytest_configure``. One torch thread (tiny models run faster so on shared CPUs) and a registry built
afresh for every test, so a test never sees plugins another test registered.
"""

from __future__ import annotations

import pytest

from specplug.registry import reset_registry
from specplug.testing import limit_torch_threads

__all__ = ["_fresh_registry", "pytest_configure"]


def pytest_configure(config):
    limit_torch_threads()


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Each test sees a registry built from the current environment, not one cached by another test."""
    reset_registry()
    yield
    reset_registry()
