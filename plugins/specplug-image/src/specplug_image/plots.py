"""PNG pictures of generated digits (matplotlib, imported when called)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_grid", "save_setting_grids"]


def _mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """Images [N, 8, 8] tiled into one array, ``columns`` per row, with a 1-pixel gap."""
    n = len(images)
    rows = -(-n // columns)
    h, w = images.shape[1:]
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    return out


def save_grid(images: np.ndarray, path: Path, title: str = "", columns: int = 10) -> Path:
    """One PNG of ``images`` [N, 8, 8] (grey levels 0..16), ``columns`` per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mosaic = _mosaic(np.asarray(images, dtype=np.float64), columns)
    fig, ax = plt.subplots(figsize=(columns * 0.45, mosaic.shape[0] / mosaic.shape[1] * columns * 0.45 + 0.4))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def save_setting_grids(grids: dict[str, np.ndarray], path: Path, columns: int = 10) -> Path:
    """One PNG with a panel per setting: ``grids`` maps a setting's label to its images [N, 8, 8]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(grids)
    panels = 2 if len(names) > 1 else 1
    rows = -(-len(names) // panels)
    fig, axes = plt.subplots(rows, panels, figsize=(panels * columns * 0.42, rows * 2.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.imshow(_mosaic(np.asarray(grids[name], dtype=np.float64), columns), cmap="gray_r", vmin=0, vmax=16,
                  interpolation="nearest")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
