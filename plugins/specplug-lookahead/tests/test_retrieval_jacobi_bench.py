"""The ``retrieval_jacobi`` suite kind, registered by this plugin: Lookahead's one-forward decoder beside
methods the registry builds by id."""

from __future__ import annotations

import json

import pytest


def test_the_retrieval_jacobi_kind_is_registered_by_this_plugin():
    from specplug.registry import get_registry

    registry = get_registry()
    spec = registry.bench_kind("retrieval_jacobi")
    assert spec.run is not None and "methods" in spec.defaults
    assert "specplug-lookahead" in registry.bench_kind_sources["retrieval_jacobi"]


@pytest.mark.slow
def test_the_quick_suite_runs_the_decoder_and_registry_methods_losslessly(tmp_path):
    from specplug.bench.suites import run_suite

    suite = tmp_path / "retrieval_jacobi.toml"
    suite.write_text('name = "retrieval_jacobi"\nkind = "retrieval_jacobi"\n[bench]\nmethods = ["pld", "lookahead", "jacobi"]\n'
                     "[quick]\nper_category = 1\nmax_new_tokens = 4\n")
    written = run_suite(suite, quick=True, out_dir=tmp_path / "out")
    assert {p.name for p in written} == {"retrieval_jacobi_quick.json", "retrieval_jacobi_quick.md"}
    doc = json.loads((tmp_path / "out" / "retrieval_jacobi_quick.json").read_text())
    assert doc["methods"] == ["plain", "pld", "lookahead", "jacobi"]
    for method in ("pld", "lookahead", "jacobi"):
        overall = doc["summary"][method]["overall"]
        assert overall["identical"] == overall["prompts"] == 13, method
