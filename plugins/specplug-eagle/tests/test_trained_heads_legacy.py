"""The ``trained_heads`` kind converts the results file its old script wrote into specplug-bench/1
documents that keep every measured figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specplug.bench.legacy import convert_file, detect, legacy_version
from specplug.bench.results import load_results, render_markdown

RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results"


def _floats(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _floats(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _floats(value)


def test_the_old_trained_heads_results_convert_keeping_every_figure(tmp_path):
    legacy = legacy_version(RESULTS / "trained_heads.json")
    if legacy is None:
        pytest.skip("no legacy version of trained_heads.json in this checkout's history")
    assert detect(legacy) == "trained_heads"
    (tmp_path / "trained_heads.json").write_text(json.dumps(legacy))
    convert_file(tmp_path / "trained_heads.json")
    docs = [load_results(p) for p in sorted(tmp_path.glob("*.json"))]
    assert docs and all(d is not None and d.meta.get("converted_from") for d in docs)
    flat = json.dumps([d.to_json() for d in docs])
    for number in _floats(legacy):
        assert repr(number) in flat or json.dumps(number) in flat, number
    for doc in docs:
        render_markdown(doc)
