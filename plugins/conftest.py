"""Shared by every plugin package's tests when they run from this repository."""

from specplug.testing import limit_torch_threads


def pytest_configure(config):
    limit_torch_threads()
