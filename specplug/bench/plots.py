"""Figures of a bench run: speedup and MAT per category, one bar per method (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from specplug.bench.metrics import BASELINE
from specplug.bench.results import BenchResults

__all__ = ["plot_results"]


def plot_results(results: BenchResults, path: Path) -> Path:
    """Two panels (speedup over plain decoding; MAT) with grouped bars per category; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cats = results.categories + ["all"]
    methods = [m for m in results.methods if m != BASELINE]
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.75 * len(cats) + 3), 7.5), sharex=True)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(cats))

    def value(method: str, cat: str, key: str) -> float:
        summary = results.summary[method]
        agg = summary["overall"] if cat == "all" else summary["categories"].get(cat)
        return float(agg[key]) if agg and agg.get(key) is not None else np.nan

    for panel, (key, label) in zip(axes, [("speedup", "speedup over plain decoding"), ("mat", "MAT (tokens per target forward)")]):
        for i, method in enumerate(methods):
            panel.bar(x + (i - (len(methods) - 1) / 2) * width, [value(method, c, key) for c in cats], width, label=method)
        panel.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        panel.set_ylabel(label)
        panel.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(cats, rotation=35, ha="right")
    meta = results.meta
    fig.suptitle(
        f"{meta.get('title') or 'specplug bench'}: {meta.get('model')} ({meta.get('dtype', '?')}, {meta.get('engine')} engine), "
        f"{meta.get('prompts')}, k={meta.get('k')}\n{meta.get('hardware', '')}, {meta.get('date', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
