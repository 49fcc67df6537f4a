"""The docs site: every hook documented, generated pages complete and fresh, the site builds strictly."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from specplug import docs_gen, hookspecs
from specplug.bench.metrics import PromptRecord
from specplug.bench.results import BenchResults, render_markdown
from specplug.registry import Registry, build_registry
from specplug.taxonomy import MethodCard, Taxonomy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def hook_signatures() -> list[str]:
    """``name(arg, ...)`` for every hook specification, as Datasette checks its docs."""
    found = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, "specplug_spec"):
            args = ", ".join(inspect.signature(fn).parameters)
            found.append(f"{name}({args})")
    return found


def test_hook_signatures_are_found():
    # guards the test below against passing vacuously
    assert "specplug_register_methods(register)" in hook_signatures()


@pytest.mark.parametrize("signature", hook_signatures())
def test_every_hook_is_documented_with_its_signature(signature):
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert f"## {signature}" in text, f"docs/hooks.md has no section '## {signature}'"


# -- generated pages from a small registry built here, so these tests do not depend on the catalogue ---

TAXONOMY = {
    "title": "test taxonomy",
    "source": {"title": "A survey", "authors": ["A. Author"], "year": 2025, "arxiv": "2502.19732"},
    "roots": [
        {
            "id": "generation",
            "title": "Generation",
            "description": "How drafts are made.",
            "children": [
                {"id": "ngram", "title": "N-gram", "facet": "generation", "value": "ngram", "description": "n"},
                {"id": "retrieval", "title": "Retrieval", "facet": "generation", "value": "retrieval", "description": "r"},
            ],
        },
        {
            "id": "system",
            "title": "System",
            "facet": "scope",
            "value": "system",
            "description": "Deployment.",
            "children": [{"id": "edge", "title": "Edge", "description": "Cards list 'edge' in deployment."}],
        },
    ],
}


def card(card_id: str, generation: str = "ngram", **extra) -> MethodCard:
    data = {
        "id": card_id,
        "name": card_id.upper(),
        "summary": f"The {card_id} method.",
        "generation": generation,
        "refinement": "single_pass_linear",
        "acceptance": "exact_greedy",
        "lossless": True,
        "training": "none",
    }
    data.update(extra)
    return MethodCard.model_validate(data)


@pytest.fixture
def small_registry() -> Registry:
    registry = Registry(taxonomy=Taxonomy.model_validate(TAXONOMY))
    registry.add_card(
        card(
            "alpha",
            paper={"title": "Alpha", "authors": ["X"], "year": 2024, "arxiv": "2401.00001"},
            implementations=[
                {"engine": "specplug_reference", "package": "specplug-alpha"},
                {"engine": "vllm_native", "vllm_method": "ngram", "config": {"prompt_lookup_max": 4}},
            ],
            related=["beta", "nowhere"],
        ),
        "test",
    )
    registry.add_card(card("beta"), "test")
    registry.add_card(card("gamma", generation="retrieval"), "test")
    registry.add_card(card("delta", scope="system", deployment=["edge"]), "test")
    return registry


def bench_results() -> BenchResults:
    records = [
        PromptRecord("1", "writing", "plain", new_tokens=10, steps=10, seconds=1.0, output_ids=[1] * 10),
        PromptRecord("1", "writing", "alpha", new_tokens=10, steps=5, drafted=8, accepted=5, seconds=0.5, output_ids=[1] * 10),
    ]
    meta = {"model": "tiny", "engine": "reference", "prompts": "t.jsonl", "num_prompts": 1, "k": 4,
            "max_new_tokens": 10, "dtype": "float32", "device": "cpu", "hardware": "test", "date": "2026-01-01"}
    return BenchResults.build(meta, ["plain", "alpha"], records)


def test_card_page_prints_the_quickstart_in_place_of_the_install_and_run_lines(small_registry, tmp_path):
    quickstart = ["bash scripts/wheelhouse.sh", 'pip install --find-links dist/wheelhouse "specplug[engine]" specplug-alpha',
                  "specplug train data --model smollm2-135m --limit 4",
                  'specplug generate --method alpha --model smollm2-135m --compare --json "PROMPT"']
    alpha = small_registry.cards["alpha"]
    small_registry.cards["alpha"] = MethodCard.model_validate(alpha.model_dump() | {"quickstart": quickstart})
    page = docs_gen.render_pages(small_registry, tmp_path)["catalogue/alpha.md"]
    assert "## Quickstart\n" in page and "```bash\n" + "\n".join(quickstart) + "\n```" in page
    assert "`tiny` budget" in page and '`"identical": true`' in page
    assert page.index("## Quickstart") < page.index("## How to run")
    assert page.count("specplug generate --method alpha") == 1  # the reference block points at the quickstart
    small_registry.cards["alpha"] = MethodCard.model_validate(
        alpha.model_dump() | {"quickstart": quickstart[:2] + quickstart[3:], "lossless": False, "acceptance": "typical"})
    lossy = docs_gen.render_pages(small_registry, tmp_path)["catalogue/alpha.md"]
    assert "The method is lossy" in lossy and "`tiny` budget" not in lossy


def test_catalogue_index_links_every_card(small_registry, tmp_path):
    pages = docs_gen.render_pages(small_registry, tmp_path)
    index = pages["catalogue/index.md"]
    for card_id in small_registry.cards:
        assert f"]({card_id}.md) `{card_id}`" in index
        assert f"catalogue/{card_id}.md" in pages
    rows = [line for line in index.splitlines() if line.startswith("| [")]
    assert len(rows) == len(small_registry.cards)


def test_card_page_has_facets_paper_and_how_to_run(small_registry, tmp_path):
    page = docs_gen.render_pages(small_registry, tmp_path)["catalogue/alpha.md"]
    assert "| generation | [N-gram](../taxonomy.md#node-ngram) |" in page
    assert "https://arxiv.org/abs/2401.00001" in page
    # no quickstart on this card: the install lines that work from a checkout, then a run
    assert "bash scripts/wheelhouse.sh\npip install --find-links dist/wheelhouse specplug-alpha\n" in page
    assert "specplug generate --method alpha" in page
    assert "## Quickstart" not in page
    native = json.loads(re.search(r"--speculative-config '(\{.*\})'", page).group(1))
    assert native == {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4}
    assert "[BETA](beta.md)" in page and "`nowhere`" in page  # unknown ids are not links (strict build)
    assert "No committed benchmark run includes this method yet." in page


def test_card_page_gives_venue_once_level_options_and_caveats(small_registry, tmp_path):
    small_registry.add_card(card(
        "epsilon", paper={"title": "E", "authors": ["Y"], "authors_truncated": True, "year": 2024, "venue": "NeurIPS 2025"},
        implementations=[{"engine": "vllm_specplug", "package": "specplug-epsilon", "config": {"model": "specplug.vllm.epsilon"},
                          "level": 2, "needs": ["target_topk"], "options": {"datastore": "DIR"}}],
        caveats="The venue was not checked.",
    ), "test")
    pages = docs_gen.render_pages(small_registry, tmp_path)
    page = pages["catalogue/epsilon.md"]
    assert "E. Y, et al. NeurIPS 2025." in page
    assert "2025 2024" not in page
    assert "### vLLM, through specplug's custom_class adapter (level 2)" in page
    assert "SPECPLUG_VLLM_LEVEL2=1 python -m vllm" in page
    assert "specplug vllm-config epsilon --k 5 --option datastore=DIR" in page
    assert """--additional-config '{"specplug": {"options": {"datastore": "DIR"}}}'""" in page
    assert "Needs `target_topk` from the engine" in page
    assert "## Caveats" in page and "The venue was not checked." in page
    assert "[NeurIPS 2025](" not in pages["catalogue/index.md"]  # no link without an arXiv id or url
    assert "| NeurIPS 2025 |" in pages["catalogue/index.md"]
    assert "hide:\n  - toc" in pages["catalogue/index.md"]  # the wide table gets the toc sidebar's room


def test_taxonomy_counts_cards_under_each_node(small_registry, tmp_path):
    page = docs_gen.render_pages(small_registry, tmp_path)["taxonomy.md"]
    assert 'n_generation["Generation (4)"]' in page
    assert 'n_ngram["N-gram (3)"]' in page
    assert 'n_system["System (1)"]' in page and 'n_edge["Edge (1)"]' in page
    assert 'n_retrieval["Retrieval (1)"]' in page
    assert "n_generation --> n_ngram" in page


def test_results_appear_on_card_and_results_pages(small_registry, tmp_path):
    results = bench_results()
    (tmp_path / "run.json").write_text(results.dumps())
    pages = docs_gen.render_pages(small_registry, tmp_path)
    assert "| **all** | 1 | 2.00 | 62.5% | 20.00 | 2.00x | 1/1 |" in pages["catalogue/alpha.md"]
    assert "model **tiny**" in pages["results.md"] and "date: 2026-01-01" in pages["results.md"]
    assert "No committed benchmark run" in pages["catalogue/beta.md"]


def test_check_finds_stale_missing_and_extra_pages(small_registry, tmp_path):
    out, results_dir = tmp_path / "generated", tmp_path / "results"
    results_dir.mkdir()
    assert docs_gen.build(out, results_dir, small_registry)
    assert docs_gen.check(out, results_dir, small_registry) == []
    assert docs_gen.build(out, results_dir, small_registry) == []  # nothing rewritten when unchanged

    (out / "catalogue/alpha.md").write_text("edited by hand\n")
    (out / "catalogue/beta.md").unlink()
    (out / "catalogue/old.md").write_text("a card that was removed\n")
    problems = "\n".join(docs_gen.check(out, results_dir, small_registry))
    assert "catalogue/alpha.md is stale" in problems
    assert "catalogue/beta.md is missing" in problems
    assert "catalogue/old.md has no source" in problems


def test_check_finds_a_committed_report_that_drifted_from_its_json(small_registry, tmp_path):
    results = bench_results()
    (tmp_path / "run.json").write_text(results.dumps())
    (tmp_path / "run.md").write_text(render_markdown(results))
    assert docs_gen.check(tmp_path / "none", tmp_path, small_registry) == []
    (tmp_path / "run.md").write_text(render_markdown(results).replace("2.00x", "3.00x"))
    problems = docs_gen.check(tmp_path / "none", tmp_path, small_registry)
    assert any("run.md does not match run.json" in p for p in problems)


# -- the real catalogue and the real site ---------------------------------------------------------------


def test_readme_has_the_sections_the_quickstart_includes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in re.findall(r'--8<-- "README\.md:([\w-]+)"', (DOCS / "quickstart.md").read_text()):
        assert f"[start:{name}]" in readme and f"[end:{name}]" in readme, f"README.md lacks section {name!r}"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return site


def test_site_builds_strictly_and_lists_every_card(built_site):
    registry = build_registry(load_entry_points=False)
    html = (built_site / "generated/catalogue/index.html").read_text(encoding="utf-8")
    for card_id in registry.cards:
        assert f'href="{card_id}/"' in html, f"catalogue page lacks {card_id}"
        assert (built_site / f"generated/catalogue/{card_id}/index.html").exists()
    assert (built_site / "api/index.html").read_text(encoding="utf-8").count("specplug.hookspecs.specplug_register_") >= 4


def test_generated_pages_are_up_to_date_after_a_build(built_site):
    assert docs_gen.check() == []


def test_check_mode_from_the_command_line(tmp_path, capsys):
    out, results = tmp_path / "generated", tmp_path / "results"
    results.mkdir()
    assert docs_gen.main(["--out", str(out), "--results", str(results)]) == 0
    assert docs_gen.main(["--check", "--out", str(out), "--results", str(results)]) == 0
    (out / "taxonomy.md").write_text("stale\n")
    assert docs_gen.main(["--check", "--out", str(out), "--results", str(results)]) == 1
    assert "taxonomy.md is stale: run 'specplug docs build'" in capsys.readouterr().err


def test_specplug_docs_check_command(built_site):
    from click.testing import CliRunner

    result = CliRunner().invoke(docs_gen.docs, ["check"])
    assert result.exit_code == 0, result.output
