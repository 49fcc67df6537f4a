"""The results document a bench run writes, and its markdown rendering.

A run writes ``results.json`` (schema :data:`SCHEMA`)::

    {"schema": "specplug-bench/1",
     "meta": {"model", "engine", "prompts", "num_prompts", "k", "max_new_tokens", "temperature",
              "dtype", "device", "hardware", "date", "specplug_version", "command", ...},
     "methods": ["plain", "pld", ...],
     "summary": {method: {"overall": {...}, "categories": {category: {...}}}},
     "records": [one PromptRecord per prompt and method, without output ids],
     "extra": {"kind": KIND, ...}}           # optional

The aggregates carry the sums (prompts, new_tokens, steps, drafted, accepted, seconds, ...) and the
ratios (mat, acceptance_rate, tokens_per_s, speedup, identical).

Two relaxations serve benchmarks that are not plain per-prompt decoding runs (suite kinds, registered
through the hook ``specplug_register_bench_kinds``):

- **Summary only.** ``records`` may be empty (or absent) when a benchmark has no per-prompt figures
  (a replay measured per category, a reliability run, an image run): ``summary`` is then the data.
  Its aggregates may lack keys (a replay has no seconds); readers treat a missing key as ``None``.
- **extra.** Figures that are not per-prompt decoding counts (goals, a cost split, per-step
  microseconds, churn counts, image quality) go in the optional top-level ``extra`` object, whose
  ``kind`` names the suite kind that wrote it; :func:`render_markdown` appends that kind's section
  (the ``render`` of the kind in the registry, so a plugin's kind renders only where the plugin is
  installed). ``meta["converted_from"]`` marks a document converted from an older format by
  ``python -m specplug.bench.legacy``. The docs site reads these files from ``docs/results/`` (see
  :mod:`specplug.docs_gen`); this module imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specplug.bench.metrics import BASELINE, PromptRecord, summarize

__all__ = ["SCHEMA", "BenchResults", "load_results", "render_markdown"]

SCHEMA = "specplug-bench/1"


@dataclass
class BenchResults:
    """A parsed results document."""

    meta: dict[str, Any]
    methods: list[str]
    summary: dict[str, dict[str, Any]]  # method -> {"overall": {...}, "categories": {cat: {...}}}
    records: list[dict[str, Any]]
    extra: dict[str, Any] | None = None  # {"kind": suite kind, ...}: see the module docstring

    @classmethod
    def build(cls, meta: dict[str, Any], methods: list[str], records: list[PromptRecord]) -> BenchResults:
        summary = summarize(records, methods)
        as_json = {
            m: {"overall": s["overall"].to_json(), "categories": {c: a.to_json() for c, a in s["categories"].items()}}
            for m, s in summary.items()
        }
        return cls(meta, methods, as_json, [r.to_json(with_output=False) for r in records])

    def to_json(self) -> dict[str, Any]:
        data = {"schema": SCHEMA, "meta": self.meta, "methods": self.methods, "summary": self.summary, "records": self.records}
        if self.extra is not None:
            data["extra"] = self.extra
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"

    @property
    def categories(self) -> list[str]:
        seen: list[str] = []
        for method in self.methods:
            for cat in self.summary.get(method, {}).get("categories") or {}:
                if cat not in seen:
                    seen.append(cat)
        return seen


def load_results(path: Path) -> BenchResults | None:
    """The results in ``path``, or ``None`` when the file is JSON of another kind."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    try:
        return BenchResults(data["meta"], list(data["methods"]), data["summary"], list(data.get("records") or []),
                            data.get("extra"))
    except KeyError as err:
        raise ValueError(f"{path}: a {SCHEMA} document lacks the key {err}") from None


def fmt(value: Any, kind: str = "") -> str:
    """A table cell: '-' for missing, 2 decimals for ratios, 1 for rates, percent for acceptance."""
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "x":
        return f"{value:.2f}x"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def describe(meta: dict[str, Any]) -> str:
    """One sentence naming the model, prompts, engine, hardware and date of a run."""
    parts = [
        f"model **{meta.get('model', '?')}** ({meta.get('dtype', '?')} on {meta.get('device', '?')})",
        f"prompts **{meta.get('prompts', '?')}** ({meta.get('num_prompts', '?')} prompts)",
        f"engine **{meta.get('engine', '?')}**",
        f"k = {meta.get('k', '?')}, at most {meta.get('max_new_tokens', '?')} new tokens, "
        f"temperature {meta.get('temperature', 0.0)}",
        f"hardware: {meta.get('hardware', '?')}",
        f"date: {meta.get('date', '?')}",
    ]
    sentence = "; ".join(parts) + "."
    if meta.get("source"):  # figures an older script made, not the command the page prints
        sentence += f" Figures from {meta['source']}."
    return sentence


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A table whose first column is a label and the others figures (right-aligned). A figure column
    that is '-' in every row has no data and is left out; with none left (or no rows) the table is ''."""
    keep = [0] + [j for j in range(1, len(header)) if any(row[j] != "-" for row in rows)]
    if len(keep) == 1 or not rows:
        return ""
    lines = ["| " + " | ".join(header[j] for j in keep) + " |", "|---|" + "---:|" * (len(keep) - 1)]
    lines += ["| " + " | ".join(row[j] for j in keep) + " |" for row in rows]
    return "\n".join(lines)


def category_table(results: BenchResults, method: str) -> str:
    """The per-category markdown table of one method (with an 'all' row)."""
    summary = results.summary[method]
    header = ["category", "prompts", "MAT", "acceptance", "tokens/s", "speedup", "same output as plain"]
    rows = []
    for name, agg in list(summary.get("categories", {}).items()) + [("**all**", summary["overall"])]:
        same = "-" if agg.get("identical") is None else f"{agg['identical']}/{agg.get('prompts')}"
        rows.append([name, fmt(agg.get("prompts")), fmt(agg.get("mat")), fmt(agg.get("acceptance_rate"), "pct"),
                     fmt(agg.get("tokens_per_s")), fmt(agg.get("speedup"), "x"), same])
    return markdown_table(header, rows)


def overview_table(results: BenchResults) -> str:
    """One row per method, one column per category: speedup (MAT); '-' where neither was measured
    ('' when no method has either anywhere: see :func:`markdown_table`)."""
    cats = results.categories
    rows = []
    for method in results.methods:
        s = results.summary[method]
        cells = []
        for agg in [s.get("categories", {}).get(c) for c in cats] + [s["overall"]]:
            measured = agg is not None and (agg.get("speedup") is not None or agg.get("mat") is not None)
            cells.append(f"{fmt(agg.get('speedup'), 'x')} ({fmt(agg.get('mat'))})" if measured else "-")
        rows.append([method] + cells)
    return markdown_table(["method", *cats, "all"], rows)


def render_markdown(results: BenchResults, title: str | None = None, heading: str = "#") -> str:
    """The markdown report of a run: what was measured, an overview, one table per method.

    Deterministic in its input, so ``specplug docs check`` can re-render a committed report from its
    JSON and find drift.
    """
    title = title or results.meta.get("title") or "specplug bench"
    out = [f"{heading} {title}", "", describe(results.meta), ""]
    if results.meta.get("command"):  # with a source (see describe), the command reruns the figures, not made them
        label = "Rerun with:" if results.meta.get("source") else "Command:"
        out += [label, "", "```bash", results.meta["command"], "```", ""]
    overview = overview_table(results)
    if overview:
        out += [
            "Speedup over plain decoding (MAT in brackets), per category. MAT = tokens emitted per target "
            "forward; speedup = tokens/s over plain decoding's in the same run.",
            "",
            overview,
            "",
        ]
    for method in results.methods:
        if method == BASELINE:
            continue
        out += [f"{heading}# {method}", "", category_table(results, method), ""]
    if BASELINE in results.summary and results.summary[BASELINE]["overall"].get("tokens_per_s") is not None:
        base = results.summary[BASELINE]["overall"]
        out += [f"Plain decoding: {fmt(base['tokens_per_s'])} tokens/s over {base['prompts']} prompts.", ""]
    if results.extra:
        out += extra_section(results, heading)
    return "\n".join(out)


def extra_section(results: BenchResults, heading: str = "#") -> list[str]:
    """The markdown lines of ``results.extra``, by the ``render`` of the suite kind it names."""
    from specplug.registry import get_registry

    kind = results.extra.get("kind") if results.extra else None
    if kind is None:
        return []
    spec = get_registry().bench_kinds.get(kind)
    if spec is None or spec.render is None:
        return [f"*The `{kind}` figures of this document are rendered by the plugin that registers the suite kind "
                f"`{kind}`, which is not installed here.*", ""]
    return spec.render(results, heading)
