"""Commands of specplug-image, added to the ``specplug`` CLI by the plugin's command hook.

- ``specplug models train-digits [--out DIR]``: train the digits target and drafter (a few CPU minutes);
- ``specplug image sample``: generate class-conditional digits with a drafter and a verifier and
  report MAT, acceptance, quality (class accuracy, Fréchet distance) and time, optionally as a PNG grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["image", "train_digits"]


@click.command("train-digits")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the models (default: specplug's cache, models/digits-ar-v1).")
@click.option("--target-steps", default=700, show_default=True, type=click.IntRange(min=1))
@click.option("--draft-steps", default=800, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Retrain even when the folder is already trained.")
def train_digits(out, target_steps, draft_steps, seed, force):
    """Train a small autoregressive image model (and its drafter) on the UCI digits; print its folder."""
    from specplug_image.train import TrainConfig
    from specplug_image.train import train_digits as run

    click.echo(run(out, TrainConfig(target_steps=target_steps, draft_steps=draft_steps, seed=seed), force=force))


@click.group()
def image() -> None:
    """Autoregressive image generation (the digits model): LANTERN, SJD, exact speculative sampling."""


@image.command("sample")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Folder made by 'specplug models train-digits' (default: the cached one).")
@click.option("--drafter", type=click.Choice(["plain", "draft", "sjd"]), default="draft", show_default=True,
              help="plain: no drafts; draft: the 1-layer drafter; sjd: Speculative Jacobi Decoding.")
@click.option("--verifier", default="speculative_sampling", show_default=True,
              help="speculative_sampling (exact) or lantern (relaxed), or any registered verifier id.")
@click.option("--delta", default=None, type=float, help="lantern: TV budget per position (default 0.1).")
@click.option("--neighbours", default=None, type=int, help="lantern: latent neighbours per token, its k (default 8).")
@click.option("--window", default=None, type=int, help="sjd: Jacobi window (default 16).")
@click.option("--k", default=4, show_default=True, type=click.IntRange(min=1), help="Most draft tokens per step.")
@click.option("--per-class", default=10, show_default=True, type=click.IntRange(min=1), help="Images per digit class.")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--grid", type=click.Path(path_type=Path), default=None, help="Write the images as a PNG grid here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sample(model_dir, drafter, verifier, delta, neighbours, window, k, per_class, temperature, seed, grid, as_json):
    """Generate PER_CLASS images of every digit and score them."""
    import numpy as np

    from specplug.engine import ReferenceEngine
    from specplug.methods import OptionsError
    from specplug.registry import UnknownIdError
    from specplug_image.generate import build_setting, sample_images
    from specplug_image.quality import DigitsJudge
    from specplug_image.train import load_digits_models

    lantern = {key: value for key, value in (("delta", delta), ("k", neighbours)) if value is not None}
    if lantern and verifier != "lantern":
        raise click.UsageError("--delta and --neighbours are lantern options: add --verifier lantern")
    if window is not None and drafter != "sjd":
        raise click.UsageError("--window is an sjd option: add --drafter sjd")
    sjd = {"window": window} if window is not None else {}
    try:
        target, draft = load_digits_models(model_dir)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    try:
        proposer, rule = build_setting(drafter, target, draft, verifier, lantern, sjd, seed=seed)
    except (OptionsError, UnknownIdError, ValueError) as err:
        raise click.UsageError(str(err)) from None
    labels = np.repeat(np.arange(10), per_class)
    run = sample_images(ReferenceEngine(target), labels, proposer, rule, k=k, temperature=temperature, seed=seed)
    quality = DigitsJudge().score(run.images, run.labels)
    data = {
        "drafter": drafter, "verifier": verifier, **lantern, **sjd, "k": k, "images": len(labels),
        "temperature": temperature, "mat": run.stats.mat, "acceptance_rate": run.stats.acceptance_rate,
        "target_forwards": run.stats.steps, "seconds": run.seconds, "accuracy": quality.accuracy,
        "frechet": quality.frechet, "invalid_tokens": run.invalid_tokens,
    }
    if grid is not None:
        from specplug_image.plots import save_grid

        save_grid(run.images, grid, title=f"{drafter} + {verifier}")
        data["grid"] = str(grid)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(
        f"{drafter} + {verifier}: {len(labels)} images, MAT {run.stats.mat:.2f}, acceptance "
        f"{run.stats.acceptance_rate:.1%}, {run.stats.steps} target forwards, {run.seconds:.1f}s; "
        f"class accuracy {quality.accuracy:.1%}, Fréchet distance {quality.frechet:.2f}"
        + (f"; grid: {grid}" if grid is not None else "")
    )
