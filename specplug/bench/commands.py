"""The ``specplug bench`` command."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click


__all__ = ["bench"]


def _parse_options(pairs: tuple[str, ...], methods: list[str]) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise click.BadParameter(f"{pair!r}: write METHOD.KEY=VALUE, e.g. pld.max_ngram=4", param_hint="--option")
        if method not in methods:
            raise click.BadParameter(f"{pair!r}: {method!r} is not in --methods ({','.join(methods)})", param_hint="--option")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(method, {})[name.strip()] = value
    return options


@click.command("bench")
@click.option("--suite", "suite_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Run a suite file (benchmarks/suites/*.toml) instead of the options below; see specplug.bench.suites.")
@click.option("--quick", is_flag=True, help="With --suite: the suite's small [quick] variant, written as NAME_quick.")
@click.option("--set", "suite_sets", multiple=True, metavar="KEY=VALUE",
              help="With --suite: override one of its [bench] settings (a TOML value; repeatable); "
                   "the command recorded in the results says so.")
@click.option("--methods", default=None, help="Comma-separated method ids; plain decoding always runs as the baseline. "
              "With --engine vllm, 'ID@native' runs vLLM's own implementation of a method (e.g. pld@native).")
@click.option("--engine", type=click.Choice(["reference", "vllm"]), default="reference", show_default=True)
@click.option("--model", default="smollm2-135m", show_default=True, help="smollm2-135m, a local HF folder or a hub id.")
@click.option("--prompts", default="spec-bench:1", show_default=True,
              help="spec-bench (480 prompts), spec-bench:N (N per category) or a jsonl file of prompts.")
@click.option("--k", type=int, default=5, show_default=True, help="Draft tokens per step.")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 is greedy.")
@click.option("--option", "option_pairs", multiple=True, metavar="METHOD.KEY=VALUE", help="A method option (repeatable).")
@click.option("--verifier", default=None, help="Verifier id for the reference engine (default: the engine's lossless default).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True,
              help="Folder for NAME.json, NAME.md and NAME.png.")
@click.option("--name", default="bench", show_default=True, help="File name stem of the outputs.")
@click.option("--title", default=None, help="A title for the report.")
@click.option("--raw", is_flag=True, help="Do not apply the model's chat template to text prompts.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where finished prompts are cached (default $SPECPLUG_CACHE/bench).")
@click.option("--no-cache", is_flag=True, help="Run every prompt again and cache nothing.")
@click.option("--threads", type=int, default=None, help="torch CPU threads for the reference engine (default: torch's).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG (no matplotlib needed).")
@click.option("--json", "as_json", is_flag=True, help="Print the results JSON on stdout (the table goes to stderr).")
def bench(suite_path, quick, suite_sets, methods, engine, model, prompts, k, max_new_tokens, temperature, option_pairs, verifier, out_dir,
          name, title, raw, cache_dir, no_cache, threads, no_plots, as_json) -> None:
    """Benchmark methods against plain decoding on the same prompts, in one run.

    Prints MAT (tokens per target forward), acceptance rate, tokens/s and speedup per prompt category,
    and writes JSON, a markdown table and a PNG plot. Finished prompts are cached, so an interrupted run
    resumes where it stopped.
    """
    from specplug.bench.prompts import PromptError
    from specplug.bench.documents import write_outputs
    from specplug.bench.runner import BenchConfig, BenchError, run_bench
    from specplug.bench.table import print_table
    from specplug.methods import OptionsError
    from specplug.registry import RegistryError, UnknownIdError

    if suite_path is not None:
        from specplug.bench.suites import SuiteError, parse_overrides, run_suite

        try:
            written = run_suite(suite_path, quick=quick, overrides=parse_overrides(suite_sets))
        except (SuiteError, BenchError, PromptError, OptionsError, RegistryError, UnknownIdError, ValueError) as err:
            raise click.ClickException(str(err)) from None
        click.echo("wrote " + ", ".join(str(p) for p in written), err=True)
        return
    for given, flag in ((quick, "--quick"), (suite_sets, "--set")):
        if given:
            raise click.BadParameter(f"{flag} applies to --suite", param_hint=flag)
    if not methods:
        raise click.BadParameter("give --methods (or --suite FILE)", param_hint="--methods")
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    if not method_list:
        raise click.BadParameter("give at least one method id", param_hint="--methods")
    cfg = BenchConfig(
        methods=method_list, engine=engine, model=model, prompts=prompts, k=k, max_new_tokens=max_new_tokens,
        temperature=temperature, options=_parse_options(option_pairs, method_list), verifier=verifier, chat=not raw,
        use_cache=not no_cache, cache_dir=cache_dir, title=title, threads=threads,
        command="specplug bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else None,
    )
    try:
        results = run_bench(cfg, show_progress=True)
    except (BenchError, PromptError, OptionsError, RegistryError, UnknownIdError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    written = write_outputs(results, out_dir, name, plots=not no_plots)
    print_table(results, sys.stderr if as_json else sys.stdout)
    click.echo("wrote " + ", ".join(str(p) for p in written), err=True)
    if as_json:
        click.echo(results.dumps())
