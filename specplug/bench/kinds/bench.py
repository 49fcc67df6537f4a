"""The suite kind ``bench``: one ``specplug bench`` run with the suite's settings (the default kind)."""

from __future__ import annotations

from pathlib import Path

from specplug.bench.kind import BenchKindSpec

__all__ = ["KIND", "run"]


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    """``specplug bench`` with the suite's settings (``methods`` + ``peers`` in one run)."""
    from specplug.bench.documents import write_outputs
    from specplug.bench.runner import BenchConfig, run_bench
    from specplug.bench.suites import SuiteError
    from specplug.bench.table import print_table

    settings = suite.given(quick)
    methods = list(settings.pop("methods", [])) + list(settings.pop("peers", []))
    if not methods:
        raise SuiteError(f"{suite.path}: [bench] needs methods = [...]")
    known = set(BenchConfig.__dataclass_fields__) - {"methods", "command", "title"}
    unknown = set(settings) - known
    if unknown:
        raise SuiteError(f"{suite.path}: unknown [bench] keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
    cfg = BenchConfig(methods=methods, title=suite.title, command=suite.command(quick), **settings)
    results = run_bench(cfg)
    name = suite.name + ("_quick" if quick else "")
    written = write_outputs(results, out_dir, name, plots=not quick)
    print_table(results)
    return written


KIND = BenchKindSpec(id="bench", run=run)
