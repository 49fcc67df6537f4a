"""The converter of old benchmark results files (specplug.bench.legacy): every committed legacy format
becomes specplug-bench/1 documents that keep the measured figures, and the pages show them. (The
formats of plugins' kinds are tested with their plugin: image, model_drafters, trained_heads.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specplug.bench.legacy import convert_file, convert_legacy_versions, detect, legacy_version
from specplug.bench.results import load_results, render_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def _legacy(name: str) -> dict:
    """A committed file as its old script wrote it (skipped in a shallow clone)."""
    data = legacy_version(RESULTS / name)
    if data is None:
        pytest.skip(f"no legacy version of {name} in this checkout's history")
    return data


def _convert(tmp_path, name: str, siblings=()) -> dict:
    docs = convert_legacy_versions(RESULTS, tmp_path, name, siblings)
    if docs is None:
        pytest.skip(f"no legacy version of {name} or {list(siblings)} in this checkout's history")
    return docs


@pytest.mark.parametrize("name", ["ngram_family.json", "vllm_pld_vs_ngram.json", "vllm_churn.json"])
def test_each_legacy_format_converts_keeping_its_figures(tmp_path, name):
    legacy = _legacy(name)
    docs = _convert(tmp_path, name)
    assert docs and all(d.meta.get("converted_from") for d in docs.values())
    flat = json.dumps([d.to_json() for d in docs.values()])
    for number in _numbers(legacy):  # every measured figure of the old file is in the new documents
        assert repr(number) in flat or json.dumps(number) in flat, (name, number)
    for doc in docs.values():
        render_markdown(doc)


def _numbers(obj):
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


def test_repetition_results_convert_per_set(tmp_path):
    stats = {"prompts": 1, "emitted": 10, "steps": 8, "drafted": 6, "accepted": 2, "mat": 1.25, "acceptance": 1 / 3}
    replay = [{"category": c, "prompts": 1, **{n: stats for n in ("vllm_ngram", "pld", "suffix_tree")}} for c in ("a", "overall")]
    legacy = {"date": "d", "vllm_version": "0.32.0", "k": 5, "max_tokens": 32, "ngram": [1, 3], "hardware": "h",
              "command": "c", "load": [1.0, 2.0], "goals": ["agentic: best", "per-step time at batch 32 (agentic) vs x"],
              "sets": {"agentic": {"num_prompts": 1, "ids": ["x"], "max_tokens": 32, "outputs": [[1]], "replay": replay}},
              "timing": [{"set": "agentic", "batch": 1, "us": {m: 2.5 for m in ("vllm_ngram", "vllm_suffix", "pld", "anpd", "suffix")}}]}
    assert detect(legacy) == "repetition"
    path = tmp_path / "vllm_repetition.json"
    path.write_text(json.dumps(legacy))
    convert_file(path)
    doc = load_results(tmp_path / "vllm_repetition_agentic.json")
    assert doc.methods == ["pld@native", "pld", "suffix@tree"] and doc.records == []
    assert doc.summary["suffix@tree"]["categories"]["a"]["mat"] == 1.25 and len(doc.extra["goals"]) == 2
    assert "2.5 (1.00x)" in render_markdown(doc)


def test_committed_results_are_all_specplug_bench_documents():
    for path in sorted(RESULTS.glob("*.json")):
        assert load_results(path) is not None, path.name


def test_every_card_with_a_committed_run_shows_it():
    from specplug.docs_gen import card_id_of, render_pages

    pages = render_pages()
    runs = {card_id_of(m) for p in RESULTS.glob("*.json") for m in load_results(p).methods} - {"plain"}
    assert {"pld", "anpd", "suffix", "recycling", "rest", "lookahead", "sps", "draft_verify", "swift", "medusa",
            "eagle", "eagle2", "eagle3", "lantern", "sjd"} <= runs
    for card in runs:
        page = pages[f"catalogue/{card}.md"]
        assert "No committed benchmark run includes this method yet." not in page, card
    assert "pld@native`, vLLM's own implementation" in pages["catalogue/pld.md"]
