"""The ``image`` suite kind: registered by this plugin, and the results file its old script wrote
(``specplug-image/1``) converts into a specplug-bench/1 document that keeps every measured figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specplug.bench.legacy import convert_file, detect, legacy_version
from specplug.bench.results import load_results, render_markdown

RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results"


def test_the_image_kind_is_registered_by_this_plugin():
    from specplug.registry import get_registry

    registry = get_registry()
    assert registry.bench_kind("image").run is not None
    assert "specplug-image" in registry.bench_kind_sources["image"]


def test_the_old_image_results_convert_keeping_every_figure(tmp_path):
    legacy = legacy_version(RESULTS / "image.json")
    if legacy is None:
        pytest.skip("no legacy version of image.json in this checkout's history")
    assert detect(legacy) == "image"
    (tmp_path / "image.json").write_text(json.dumps(legacy))
    convert_file(tmp_path / "image.json")
    doc = load_results(tmp_path / "image.json")
    assert doc.meta["converted_from"].startswith("image.json") and doc.extra["kind"] == "image"
    flat = json.dumps(doc.to_json())
    for row in legacy["settings"]:
        for key in ("mat", "acceptance_rate", "accuracy", "frechet", "seconds", "speedup"):
            assert repr(row[key]) in flat, (row["name"], key)
    page = render_markdown(doc)
    assert "| draft + exact |" in page and "## " in page
