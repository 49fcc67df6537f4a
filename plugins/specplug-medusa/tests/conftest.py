"""Fixtures of specplug-medusa's tests: one torch thread, a fresh registry per test."""

from specplug.testing.fixtures import _fresh_registry, pytest_configure  # noqa: F401
