"""CLI commands of the reference engine: ``specplug models ...`` and ``specplug generate``.

The lead wires these into :mod:`specplug.cli` with ``cli.add_command(models)`` and
``cli.add_command(generate)``.
"""

from __future__ import annotations

import click

__all__ = ["generate", "models"]


@click.group()
def models() -> None:
    """Models the engine can load (built-in names, local folders, hub ids)."""


@models.command("list")
def models_list() -> None:
    """Built-in model names and whether they are converted in the cache."""
    from specplug.models import KNOWN_MODELS, SMOLLM2_FOLDER, _DONE_MARKER, cache_dir

    for name, description in KNOWN_MODELS.items():
        folder = cache_dir() / "models" / SMOLLM2_FOLDER
        state = f"cached at {folder}" if (folder / _DONE_MARKER).exists() else "not fetched (specplug models fetch " + name + ")"
        click.echo(f"{name}\t{description}\t{state}")


@models.command("fetch")
@click.argument("name")
def models_fetch(name: str) -> None:
    """Obtain NAME (e.g. smollm2-135m) and print its local folder path as the last line."""
    from specplug.models import _ALIASES, KNOWN_MODELS, ModelLoadError, resolve_model

    if name.strip().lower() not in _ALIASES:
        known = ", ".join(KNOWN_MODELS)
        raise click.UsageError(f"unknown built-in model {name!r}; 'fetch' knows: {known}. "
                               "Local folders and hub ids need no fetch: pass them to --model.")
    try:
        path = resolve_model(name)
    except ModelLoadError as err:
        raise click.ClickException(str(err)) from None
    click.echo(path)
