"""The per-category table of a bench run on a terminal (rich) or a pipe (plain text)."""

from __future__ import annotations

import sys

from specplug.bench.results import BenchResults, fmt

__all__ = ["print_table"]


def print_table(results: BenchResults, stream=None) -> None:
    """The per-category table: one row per (category, method); rich in a terminal, plain text when piped."""
    stream = stream or sys.stdout
    headers = ["category", "method", "prompts", "MAT", "acceptance", "tokens/s", "speedup", "same as plain"]
    rows = []
    for cat in results.categories + ["all"]:
        for method in results.methods:
            s = results.summary[method]
            agg = s["overall"] if cat == "all" else s["categories"].get(cat)
            if agg is None:
                continue
            same = "-" if agg.get("identical") is None else f"{agg['identical']}/{agg['prompts']}"
            rows.append([cat, method, str(agg["prompts"]), fmt(agg["mat"]), fmt(agg["acceptance_rate"], "pct"),
                         fmt(agg["tokens_per_s"]), fmt(agg["speedup"], "x"), same])
    meta = results.meta
    title = (f"{meta.get('model')} ({meta.get('dtype', '?')}, {meta.get('device', '?')}), {meta.get('engine')} engine, "
             f"{meta.get('prompts')}, k={meta.get('k')}, max_new_tokens={meta.get('max_new_tokens')}")
    if stream.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i < 2 else "right")
        previous = None
        for row in rows:
            if previous is not None and row[0] != previous:
                table.add_section()
            table.add_row(*row)
            previous = row[0]
        Console(file=stream).print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(title, file=stream)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)), file=stream)
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))), file=stream)
