"""The model_drafters kind converts the results file its old script wrote (``specplug-model-drafters/1``)
into specplug-bench/1 documents that keep the cost split and the goals, and its vLLM section into its
own document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specplug.bench.legacy import convert_file, convert_legacy_versions, legacy_version
from specplug.bench.results import SCHEMA, load_results, render_markdown

RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results"


def _accept(name: str, data: dict) -> bool:
    """The old script's version of a file (``model_drafters_k<K>``: before it had ``extra``)."""
    return data.get("schema") != SCHEMA or (name.startswith("model_drafters_k") and "extra" not in data)


def _legacy(name: str) -> dict:
    """A committed file as its old script wrote it."""
    data = legacy_version(RESULTS / name, lambda d: _accept(name, d))
    if data is None:
        pytest.skip(f"no legacy version of {name} in this checkout's history")
    return data


def _convert(tmp_path, name: str, siblings=()) -> dict:
    docs = convert_legacy_versions(RESULTS, tmp_path, name, siblings, _accept)
    if docs is None:
        pytest.skip(f"no legacy version of {name} or {list(siblings)} in this checkout's history")
    return docs


def test_model_drafters_keeps_the_cost_split_and_goals(tmp_path):
    legacy = _legacy("model_drafters.json")
    docs = _convert(tmp_path, "model_drafters.json", ["model_drafters_k5.json"])
    k5 = docs["model_drafters_k5"]
    assert k5.extra["cost"] == legacy["reference"] and k5.extra["goals"] == legacy["goals"]
    assert k5.meta["converted_from"].startswith("model_drafters.json")
    assert not (tmp_path / "model_drafters.json").exists()
    assert "## Goals" in render_markdown(k5)


def test_model_drafters_vllm_section_becomes_its_own_document(tmp_path):
    legacy = _legacy("model_drafters.json")
    k5 = _legacy("model_drafters_k5.json")
    rows = [{"prompt_id": str(i), "category": "", "new_tokens": 10, "steps": 8 if e != "plain" else 10,
             "drafted": 5 if e != "plain" else 0, "accepted": 2 if e != "plain" else 0, "seconds": 1.0}
            for e in ("plain", "ngram") for i in range(len(legacy["meta"]["prompt_ids"]))]
    per_prompt = {e: {"batch1": [r for r in rows if (r["drafted"] > 0) == (e != "plain")],
                      "batch": {"seconds": 2.0, "new_tokens": 130, "drafted": 9, "accepted": 3}} for e in ("plain", "ngram")}
    agg = {"batch1_mat": 1.25, "batch1_acceptance": 0.4, "batch1_tokens_per_s": 10.0, "batch1_speedup": 1.0,
           "batch1_identical": 13, "batch_mat": 1.1, "batch_acceptance": 0.3, "batch_tokens_per_s": 65.0,
           "batch_speedup": 1.0, "batch_identical": 13, "prompts": 13}
    legacy["vllm"] = {"k": 5, "configs": {"plain": None, "ngram": {"method": "ngram"}}, "vllm_version": "0.32.0",
                      "rows": [{"engine": e, **agg} for e in ("plain", "ngram")], "per_prompt": per_prompt}
    (tmp_path / "model_drafters.json").write_text(json.dumps(legacy))
    (tmp_path / "model_drafters_k5.json").write_text(json.dumps(k5))
    convert_file(tmp_path / "model_drafters.json")
    doc = load_results(tmp_path / "model_drafters_vllm.json")
    assert doc.methods == ["plain", "pld@native"]
    overall = doc.summary["pld@native"]["overall"]
    assert overall["mat"] == 130 / 104 and overall["identical"] == 13
    assert {r["prompt_id"] for r in doc.records} == set(legacy["meta"]["prompt_ids"])
    assert doc.extra["batch"]["pld@native"]["accepted"] == 3
