"""The wheel is self-contained: the catalogue ships inside it and the CLI runs from an installed copy."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from cli_helpers import REPO, run_specplug


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("specplug-*.whl")
    return path


def test_wheel_ships_the_catalogue(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "specplug/_registry/taxonomy.yaml" in names
    cards = [n for n in names if n.startswith("specplug/_registry/methods/") and n.endswith(".yaml")]
    assert len(cards) == len(list((REPO / "registry" / "methods").glob("*.yaml")))
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "specplug = specplug.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_runs_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import specplug.registry as r; print(r.catalogue_dir())"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": str(target), "PATH": ""}, cwd=tmp_path,
    )
    assert probe.stdout.strip().startswith(str(target))
    listed = run_specplug("list", "--json", env={"PYTHONPATH": str(target)}, check=True)
    assert len(json.loads(listed.stdout)) >= 60
