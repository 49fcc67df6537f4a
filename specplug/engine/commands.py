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
    from specplug.models import BUILTIN_FOLDERS, KNOWN_MODELS, _DONE_MARKER, cache_dir

    for name, description in KNOWN_MODELS.items():
        folder = cache_dir() / "models" / BUILTIN_FOLDERS[name]
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


@models.command("derive")
@click.argument("base")
@click.option("--layers", "layer_spec", required=True, metavar="SPEC",
              help="Decoder layers to keep: ids and inclusive ranges, e.g. 0-3,29.")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Folder to write (default: under the cache, keyed by the base's fingerprint and the layers).")
@click.option("--dtype", default=None, type=click.Choice(["float32", "bfloat16", "float16"]), help="Convert the weights (default: as stored).")
def models_derive(base: str, layer_spec: str, out: str | None, dtype: str | None) -> None:
    """Write a draft model holding a subset of BASE's decoder layers; print its folder as the last line.

    BASE is smollm2-135m or a local Llama-style folder. Embeddings, final norm and LM head are kept
    (tied embeddings stay tied), the kept layers are renumbered. The folder loads in transformers and as
    vLLM's draft model: specplug vllm-config sps --model FOLDER.
    """
    from specplug.models.derive import DeriveError, derive_model
    from specplug.models import ModelLoadError

    try:
        path = derive_model(base, layer_spec, out, dtype)
    except (DeriveError, ModelLoadError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(path)


def _parse_options(pairs: tuple[str, ...]) -> dict:
    """``key=value`` pairs; values read as YAML scalars (``3`` -> int, ``true`` -> bool)."""
    import yaml

    options: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--option expects key=value, got {pair!r}")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


def _encode(tokenizer, prompt: str, raw: bool) -> list[int]:
    if not raw and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # BatchEncoding in recent transformers
            ids = ids["input_ids"]
        return [int(t) for t in ids]
    if not raw:
        click.echo("note: the tokenizer has no chat template; using the raw prompt", err=True)
    return [int(t) for t in tokenizer(prompt)["input_ids"]]


def _stats_line(label: str, stats, finish: str) -> str:
    return (
        f"{label}: {stats.new_tokens} tokens ({finish}), {stats.steps} target forwards, MAT {stats.mat:.2f}, "
        f"acceptance {stats.acceptance_rate:.1%} ({stats.accepted}/{stats.drafted}), {stats.tokens_per_s:.1f} tok/s "
        f"(draft {stats.draft_s:.3f}s, verify {stats.verify_s:.3f}s)"
    )


@click.command()
@click.argument("prompt")
@click.option("--method", "method_id", default=None, help="Drafting method id (see 'specplug list'); omit for plain decoding.")
@click.option("--model", default="smollm2-135m", show_default=True, help="smollm2-135m, a local HF folder, or a hub id.")
@click.option("--max-new-tokens", default=128, show_default=True, type=int)
@click.option("--k", default=5, show_default=True, type=int, help="Most draft tokens per step.")
@click.option("--temperature", default=0.0, show_default=True, type=float, help="0 = greedy.")
@click.option("--top-p", default=1.0, show_default=True, type=float)
@click.option("--top-k", default=0, show_default=True, type=int, help="0 = off.")
@click.option("--verifier", default=None, help="Verifier id (default tree_verification: lossless, chains and trees).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Method option (repeatable).")
@click.option("--verifier-option", "verifier_options", multiple=True, metavar="KEY=VALUE",
              help="Verifier option (repeatable), e.g. lantern's model=smollm2-135m.")
@click.option("--compare", is_flag=True, help="Also run plain decoding in this call and report the speedup.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--raw", is_flag=True, help="Do not apply the model's chat template.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=0, type=int, help="torch CPU threads (0 = torch's default). On a shared CPU, 1 is often fastest.")
def generate(prompt, method_id, model, max_new_tokens, k, temperature, top_p, top_k, verifier, options, verifier_options,
             compare, as_json, raw, seed, threads):
    """Generate a reply to PROMPT with the reference engine, with or without a drafting method."""
    import json

    from specplug.methods import OptionsError
    from specplug.protocols import SamplingParams
    from specplug.registry import NotRunnableError, RegistryError, UnknownIdError

    # cheap checks first, before loading a model
    if not prompt.strip():
        raise click.UsageError("the prompt is empty: give the text to continue, e.g. specplug generate \"Hello\"")
    if k < 1:
        raise click.UsageError(f"--k must be >= 1 (draft tokens per step), got {k}")
    if max_new_tokens < 1:
        raise click.UsageError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    try:
        sampling = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    option_values = _parse_options(options)
    if option_values and not method_id:
        raise click.UsageError("--option needs --method (plain decoding has no options)")
    spec = None
    if method_id:
        from specplug.registry import get_registry

        try:
            spec = get_registry().method(method_id)
            spec.validate_options(option_values)
        except (UnknownIdError, NotRunnableError, OptionsError, RegistryError) as err:
            raise click.UsageError(str(err)) from None
        if spec.max_k is not None and k > spec.max_k:
            raise click.UsageError(f"{spec.id!r} drafts at most {spec.max_k} tokens per step; use --k {spec.max_k} or less")
    from specplug.engine.engine import ReferenceEngine, resolve_verifier
    from specplug.models import ModelLoadError, load_model

    verifier_values = _parse_options(verifier_options)
    try:
        rule = resolve_verifier(verifier, verifier_values or None)
    except (UnknownIdError, RegistryError, OptionsError) as err:
        raise click.UsageError(str(err)) from None
    if threads < 0:
        raise click.UsageError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        target, tokenizer = load_model(model)
    except ModelLoadError as err:
        raise click.ClickException(str(err)) from None
    engine = ReferenceEngine(target, tokenizer)
    if getattr(target.config, "is_encoder_decoder", False):  # speech recognition (Whisper): PROMPT is a 16 kHz mono WAV
        from specplug.kit.seq2seq import AudioError, encode_audio_prompt

        try:
            ids = encode_audio_prompt(engine, model, prompt)
        except AudioError as err:
            raise click.ClickException(str(err)) from None
    else:
        ids = _encode(tokenizer, prompt, raw)
    # warm-up (model and proposer, e.g. JIT compilation), so the timed runs pay no one-off costs
    engine.generate([ids], spec.build(option_values) if spec is not None else None, rule, k=k, max_new_tokens=2)

    result = baseline = None
    if spec is not None:
        proposer = spec.build(option_values)
        result = engine.generate([ids], proposer, rule, k=k, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed)[0]
    if compare or spec is None:
        baseline = engine.generate([ids], None, rule, k=k, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed)[0]
    main = result or baseline
    speedup = None
    if result is not None and baseline is not None and baseline.stats.tokens_per_s > 0:
        speedup = result.stats.tokens_per_s / baseline.stats.tokens_per_s

    if as_json:
        data = {
            "method": spec.id if spec else None,
            "verifier": verifier,
            "model": model,
            "k": k,
            "temperature": temperature,
            "text": main.text,
            "token_ids": main.token_ids,
            "finish_reason": main.finish_reason,
            **main.stats.to_dict(),
            "speedup": speedup,
        }
        if compare and result is not None:
            data.update(
                baseline_text=baseline.text,
                baseline_tokens_per_s=baseline.stats.tokens_per_s,
                identical=baseline.token_ids == result.token_ids,
            )
        click.echo(json.dumps(data))
        return
    click.echo(main.text)
    click.echo("")
    if result is not None:
        click.echo(_stats_line(spec.id, result.stats, result.finish_reason))
    if baseline is not None:
        click.echo(_stats_line("plain decoding", baseline.stats, baseline.finish_reason))
    if speedup is not None:
        same = "identical" if baseline.token_ids == result.token_ids else "different (expected only when sampling or with a lossy verifier)"
        click.echo(f"speedup {speedup:.2f}x over plain decoding; outputs {same}")
