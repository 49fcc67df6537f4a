"""Every committed results page can be rerun as printed.

The pages under ``docs/results/`` are rendered from their JSON documents (:mod:`specplug.bench.results`).
Each prints a ``specplug bench --suite benchmarks/suites/<file>.toml`` command; a page whose figures an
older script made says so (``meta["source"]``) instead of passing the suite's command off as the one
that made them. Tables print no column without data and no cell without a figure.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from specplug.bench.results import BenchResults, render_markdown
from specplug.bench.suites import load_suite, parse_overrides

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs" / "results").glob("*.md"))
SUITE_COMMAND = re.compile(r"^specplug bench --suite (benchmarks/suites/[\w.-]+\.toml)(.*)$", re.MULTILINE)


def suite_commands(text: str) -> list[tuple[str, list[str]]]:
    """``(suite file, the words after it)`` of every suite command on its own line of ``text``."""
    return [(path, shlex.split(rest)) for path, rest in SUITE_COMMAND.findall(text)]


def table_cells(text: str) -> list[str]:
    """Every cell of every markdown table row in ``text`` (separator rows included)."""
    return [cell.strip() for line in text.splitlines() if line.startswith("|") for cell in line.strip()[1:-1].split("|")]


def test_there_are_pages_to_check():
    assert len(PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_prints_a_suite_command_that_loads(page):
    commands = suite_commands(page.read_text(encoding="utf-8"))
    assert commands, f"{page.name} prints no 'specplug bench --suite benchmarks/suites/<file>.toml' command"
    for path, words in commands:
        suite = load_suite(ROOT / path)  # a missing or invalid file raises SuiteError
        sets = []
        while words:
            flag = words.pop(0)
            if flag == "--quick":
                continue
            assert flag == "--set" and words, f"{page.name}: {flag!r} is not an option of a suite run"
            sets.append(words.pop(0))
        unknown = set(parse_overrides(sets)) - set(suite.bench)
        assert not unknown, f"{page.name}: --set of keys {sorted(unknown)} that {path} does not state"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_a_page_without_hardware_or_date_says_where_its_figures_came_from(page):
    text = page.read_text(encoding="utf-8")
    if "hardware: ?" in text or "date: ?" in text:
        assert "Figures from the older script" in text, f"{page.name}: unknown hardware and no source of its figures"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_no_table_cell_is_empty_or_without_figures(page):
    cells = table_cells(page.read_text(encoding="utf-8"))
    assert cells, page.name
    assert "- (-)" not in cells, f"{page.name}: a cell with neither speedup nor MAT"
    assert "" not in cells, f"{page.name}: an empty table cell (a column without a header?)"


def _summary_only(meta: dict) -> BenchResults:
    """A document like the churn run's: acceptance only, no categories, no MAT, no speed."""
    overall = {"prompts": 10, "drafted": 8, "accepted": 6, "acceptance_rate": 0.75, "mat": None, "speedup": None,
               "tokens_per_s": None, "identical": None}
    return BenchResults(meta, ["suffix"], {"suffix": {"overall": overall, "categories": {}}}, [])


def test_render_leaves_out_columns_and_tables_without_data():
    text = render_markdown(_summary_only({"title": "t", "command": "specplug bench --suite benchmarks/suites/x.toml"}))
    assert "Speedup over plain decoding" not in text  # no method has a speedup or a MAT anywhere
    assert "| category | prompts | acceptance |" in text and "| **all** | 10 | 75.0% |" in text
    assert "Command:" in text and "Figures from" not in text


def test_render_says_where_figures_an_older_script_made_came_from():
    meta = {"title": "t", "hardware": "?", "command": "specplug bench --suite benchmarks/suites/x.toml",
            "source": "the older script `python benchmarks/x.py` at commit abc1234"}
    text = render_markdown(_summary_only(meta))
    assert "hardware: ?; date: ?. Figures from the older script `python benchmarks/x.py` at commit abc1234." in text
    assert "Rerun with:\n\n```bash\nspecplug bench --suite benchmarks/suites/x.toml\n```" in text
    assert "Command:" not in text
