"""Fixtures of specplug's core tests (the ones every suite shares come from specplug's pytest plugin,
:mod:`specplug.testing.pytest_plugin`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent


@pytest.fixture(scope="session")
def third_party_site(tmp_path_factory) -> Path:
    """Two third-party plugins installed with pip into a separate target folder: the plugin guide's
    example package (docs/examples/specplug-hello) and a plugin that fails to import
    (tests/plugins/specplug-broken).

    Installing into a folder of their own (put on PYTHONPATH by the tests that want them) exercises the
    real packaging and entry-point discovery without changing the environment the other tests run in.
    """
    target = tmp_path_factory.mktemp("third_party_site")
    for package in (REPO / "docs" / "examples" / "specplug-hello", TESTS / "plugins" / "specplug-broken"):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(package)],
            check=True,
            timeout=300,
        )
    return target
