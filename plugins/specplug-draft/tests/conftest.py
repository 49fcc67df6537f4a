"""Fixtures of specplug-draft's tests: one torch thread, a fresh registry per test."""

from specplug.pytest_fixtures import _fresh_registry, pytest_configure  # noqa: F401
