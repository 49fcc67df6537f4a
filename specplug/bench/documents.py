"""Writing results documents, and the parts a suite kind builds them from.

- :func:`write_outputs` / :func:`write_documents`: ``<name>.json`` + ``<name>.md`` (+ ``<name>.png``);
- :func:`summary_doc` / :func:`aggregate_json`: a summary-only document (no per-prompt records);
- :func:`goal_lines` / :func:`demoted`: markdown pieces of a kind's ``extra`` section.

Imports nothing heavy (matplotlib only when a plot is written) and no suite kind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from specplug.bench.metrics import Aggregate
from specplug.bench.results import BenchResults, render_markdown

__all__ = ["aggregate_json", "demoted", "goal_lines", "summary_doc", "write_documents", "write_outputs"]

#: the keys every aggregate of a summary carries (missing figures are None)
AGG_KEYS = tuple(Aggregate().to_json())


def write_outputs(results: BenchResults, out_dir: Path, name: str = "bench", plots: bool = True) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and (with matplotlib) ``<name>.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    json_path.write_text(results.dumps(), encoding="utf-8")
    md_path = out_dir / f"{name}.md"
    md_path.write_text(render_markdown(results), encoding="utf-8")
    written = [json_path, md_path]
    if plots:
        from specplug.bench.plots import plot_results

        png = out_dir / f"{name}.png"
        plot_results(results, png)
        written.append(png)
    return written


def write_documents(docs: dict[str, BenchResults], out_dir: Path, quick: bool = False) -> list[Path]:
    """Write each ``{stem: BenchResults}`` as ``<stem>.json`` and its ``<stem>.md`` (``<stem>_quick`` under --quick)."""
    written = []
    for stem, results in docs.items():
        name = stem + ("_quick" if quick else "")
        written += write_outputs(results, out_dir, name, plots=False)
        print(f"wrote {out_dir / name}.{{json,md}}", file=sys.stderr)
    return written


def aggregate_json(**figures: Any) -> dict[str, Any]:
    """An aggregate of a summary-only document: the figures given, every other key ``None``.

    Counts given as sums (``new_tokens``, ``steps``, ...) also give the ratios the schema derives from
    them; ratios given directly (a legacy file that kept only ``mat``) are carried as they are.
    """
    out: dict[str, Any] = dict.fromkeys(AGG_KEYS)
    sums = {k: v for k, v in figures.items() if k in Aggregate.__dataclass_fields__ and v is not None}
    if {"new_tokens", "steps"} <= set(sums):
        derived = Aggregate(**sums).to_json()
        out.update({k: v for k, v in derived.items() if k in ("mat", "acceptance_rate", "tokens_per_s")})
        if "seconds" not in sums:
            out["tokens_per_s"] = None
        if "drafted" not in sums:
            out["acceptance_rate"] = None
    out.update({k: v for k, v in figures.items() if v is not None or k not in out})
    return out


def summary_doc(meta: dict, per_method: dict[str, dict[str, dict]], extra: dict | None = None) -> BenchResults:
    """A summary-only :class:`~specplug.bench.results.BenchResults`: ``per_method`` is
    ``{method: {"overall": aggregate, "categories": {category: aggregate}}}`` (categories may be empty)."""
    summary = {m: {"overall": s["overall"], "categories": s.get("categories", {})} for m, s in per_method.items()}
    return BenchResults(meta, list(per_method), summary, [], extra)


def goal_lines(goals: list, heading: str) -> list[str]:
    """A goals section: strings as they are, or ``{"goal", "met", "figure"}`` objects (an optional
    ``verdict`` replaces met / not met, e.g. "undecided" when the measurement's noise exceeds the margin)."""
    if not goals:
        return []
    out = [f"{heading}# Goals", ""]
    for g in goals:
        if isinstance(g, str):
            out.append(f"- {g}")
        else:
            verdict = g.get("verdict") or ("met" if g["met"] else "not met" if g["met"] is not None else "not measured")
            out.append(f"- {verdict}: {g['goal']} ({g['figure']})")
    return out + [""]


def demoted(markdown: str, heading: str) -> list[str]:
    """A report's lines without its title, each heading one level under ``heading``."""
    lines = markdown.rstrip("\n").split("\n")
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return [heading + line if line.startswith("#") else line for line in lines] + [""]
