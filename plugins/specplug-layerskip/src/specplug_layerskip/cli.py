"""``specplug layerskip ...``: make and inspect layer-skip profiles (added to the CLI by the plugin hook)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["layerskip"]


@click.group()
def layerskip() -> None:
    """Layer-skip self-speculation (draft_verify, swift): calibrate and inspect profiles."""


@layerskip.command("calibrate")
@click.option("--model", "-m", "model_name", required=True, help="Target model: smollm2-135m, a local folder, or a hub id.")
@click.option("--method", type=click.Choice(["draft_verify", "swift"]), default="draft_verify", show_default=True)
@click.option("--prompts", "num_prompts", type=int, default=6, show_default=True, help="Calibration prompts (never the benchmarks').")
@click.option("--new-tokens", type=int, default=48, show_default=True, help="Greedy tokens generated per prompt.")
@click.option("--max-prompt-tokens", type=int, default=160, show_default=True, help="Skip calibration prompts longer than this.")
@click.option("--k", type=int, default=5, show_default=True, help="Draft tokens per step to optimise for.")
@click.option("--evaluations", type=int, default=20, show_default=True, help="Skip sets the search evaluates.")
@click.option("--verify-cost", "verify_cost", type=float, default=0.1, show_default=True,
              help="Cost model: extra cost of each verified draft token, in target steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of the cache.")
def calibrate_command(model_name, method, num_prompts, new_tokens, max_prompt_tokens, k, evaluations, verify_cost, seed, threads, out):
    """Search a skip set for MODEL and write its profile into the cache (or OUT)."""
    import torch

    from specplug.models import ModelLoadError, load_model
    from specplug_layerskip.calibrate import calibrate
    from specplug_layerskip.profile import save_profile

    for name, value in (("--prompts", num_prompts), ("--new-tokens", new_tokens), ("--k", k), ("--evaluations", evaluations)):
        if value < 1:
            raise click.BadParameter(f"must be >= 1, got {value}", param_hint=name)
    if threads:
        torch.set_num_threads(threads)
    with torch.no_grad():  # decoding only; the caller's grad mode is left as it was
        try:
            model, tokenizer = load_model(model_name, dtype="float32")
        except ModelLoadError as err:
            raise click.ClickException(str(err)) from None
        try:
            profile = calibrate(
                model, tokenizer, method, model_name=model_name, num_prompts=num_prompts, max_prompt_tokens=max_prompt_tokens,
                new_tokens=new_tokens, k=k, evaluations=evaluations, verify_cost_per_token=verify_cost, seed=seed,
                log=lambda message: click.echo(message, err=True),
            )
        except ValueError as err:
            raise click.ClickException(str(err)) from None
    path = save_profile(profile, out)
    c = profile.calibration
    click.echo(
        f"wrote {path}: {method}, skip {profile.skip.size} of {2 * profile.num_layers} sub-layers "
        f"({profile.skip.describe()}), threshold {profile.threshold}, measured acceptance {c.acceptance:.3f}, "
        f"MAT {c.mat:.3f} on {len(c.prompt_ids)} calibration prompts ({c.seconds:.0f}s)"
    )


@layerskip.command("show")
@click.option("--model", "-m", "model_name", default=None, help="Find the cached profile of this model.")
@click.option("--method", type=click.Choice(["draft_verify", "swift"]), default="draft_verify", show_default=True)
@click.option("--profile", "path", type=click.Path(path_type=Path), default=None, help="A profile file instead.")
def show_command(model_name, method, path):
    """Print a profile (validated) without its vocabulary ranking."""
    import json

    from specplug_layerskip.profile import ProfileError, load_profile, model_fingerprint

    if path is None and model_name is None:
        raise click.UsageError("give --model or --profile")
    try:
        if path is not None:
            raw = json.loads(Path(path).read_text())
            fingerprint = raw.get("model_fingerprint", "") if isinstance(raw, dict) else ""
        else:
            from specplug.models import load_model

            fingerprint = model_fingerprint(load_model(model_name, dtype="float32")[0])
        profile = load_profile(method, fingerprint, path, model_name)
    except (ProfileError, OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    data = json.loads(profile.model_dump_json())
    data["vocab_ranking"] = f"{len(profile.vocab_ranking)} token ids"
    json.dump(data, sys.stdout, indent=2)
    click.echo()
