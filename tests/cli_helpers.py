"""Helpers for tests that run the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_specplug(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real ``specplug`` command line in a subprocess (stdout is a pipe: plain-text output)."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "specplug", *args], capture_output=True, text=True, env=full_env, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"specplug {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result
