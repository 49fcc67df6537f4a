"""A rich progress bar with ETA for the training commands (plain lines when not on a terminal)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(description: str, total: float, unit: str = "", quiet: bool = False):
    """Yields ``advance(amount, **fields)``; shows done/total, elapsed time and time remaining.

    Off a terminal (logs, CI) rich prints nothing until the end, so the bar is transient there and
    the caller's own summary line carries the result."""
    if quiet:
        yield lambda amount=0, **fields: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=Console(stderr=True), transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(amount: float = 0, **fields) -> None:
            info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            progress.update(task, advance=amount, **({"info": info} if fields else {}))

        yield advance
