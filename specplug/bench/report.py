"""Re-render a bench report's markdown (and plot) from its JSON: ``python -m specplug.bench.report FILE.json``.

``specplug docs check`` compares every committed ``docs/results/<name>.md`` with the rendering of its
``<name>.json``; after changing the renderer, run this on each results file to bring them back in line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from specplug.bench.results import load_results, render_markdown


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m specplug.bench.report RESULTS.json [...] [--plots]", file=sys.stderr)
        return 2
    plots = "--plots" in argv
    for name in [a for a in argv if a != "--plots"]:
        path = Path(name)
        results = load_results(path)
        if results is None:
            print(f"{path}: not a specplug bench results file", file=sys.stderr)
            return 1
        path.with_suffix(".md").write_text(render_markdown(results), encoding="utf-8")
        if plots:
            from specplug.bench.plots import plot_results

            plot_results(results, path.with_suffix(".png"))
        print(f"rendered {path.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
