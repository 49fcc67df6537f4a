"""The ``specplug`` command line.

Catalogue commands live here (list, show, tree, plugins, validate, schema). Heavier commands live
beside the code they drive and load only when called (``LAZY_COMMANDS``), so browsing the catalogue
never imports torch or vllm. Plugins add commands through ``specplug_register_commands``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click

from specplug.catalogue_checks import WHEELHOUSE_BUILD, WHEELHOUSE_INSTALL
from specplug.registry import RegistryError, UnknownIdError, get_registry, load_card_file
from specplug.taxonomy import FACETS, Engine, MethodCard

#: command name -> "module:attribute", imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "generate": "specplug.engine.commands:generate",
    "models": "specplug.engine.commands:models",
    "vllm-config": "specplug.integrations.vllm.commands:vllm_config",
    "bench": "specplug.bench.commands:bench",
    "train": "specplug.train.commands:train",
    "docs": "specplug.docs_gen:docs",
}


class SpecplugGroup(click.Group):
    """A group whose heavy subcommands import lazily and whose plugins may add commands."""

    _plugins_loaded = False

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from specplug.plugins import get_plugin_manager

        plugin_set = get_plugin_manager()
        for info in plugin_set.infos:
            plugin = plugin_set.pm.get_plugin(info.name)
            impl = getattr(plugin, "specplug_register_commands", None)
            if impl is None:
                continue
            try:
                impl(cli=self)
            except Exception as exc:  # a broken plugin must not break the CLI
                click.echo(f"warning: plugin {info.name!r} failed to add its commands: {exc}", err=True)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands(ctx)
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            module_name, attr = LAZY_COMMANDS[name].split(":")
            try:
                command = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                command = _unavailable_command(name, exc)
            self.add_command(command, name)
            self._load_plugin_commands(ctx)  # plugins may add subcommands to a built-in group
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, name)
        return command


def _unavailable_command(name: str, exc: ImportError) -> click.Command:
    """Stands in for a command whose optional dependencies are missing, so ``--help`` still works."""
    message = (
        f"'specplug {name}' needs an optional dependency that is missing ({exc}). "
        "Install it with: pip install 'specplug[engine,bench]' (and vllm for the vLLM engine)"
    )

    def fail(**_ignored: object) -> None:
        raise click.ClickException(message)

    return click.Command(
        name,
        callback=fail,
        help=f"(unavailable: {exc})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=SpecplugGroup)
@click.version_option(package_name="specplug")
def cli() -> None:
    """specplug: speculative decoding methods, catalogued, installable and measured."""


def _registry():
    registry = get_registry()
    for problem in registry.problems:
        click.echo(f"warning: {problem}", err=True)
    return registry


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _print_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A rich table in a terminal; tab-separated plain text when piped."""
    if _is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        click.echo("\t".join(headers))
        for row in rows:
            click.echo("\t".join(row))


def _facet_options(command):
    for facet, enum in reversed(FACETS.items()):
        command = click.option(
            f"--{facet}",
            type=click.Choice([e.value for e in enum]),
            help=f"Only cards with this {facet}.",
        )(command)
    return command


def _card_json(card: MethodCard, runnable: bool) -> dict:
    data = card.model_dump(mode="json")
    data["runnable"] = runnable
    return data


@cli.command("list")
@_facet_options
@click.option("--deployment", help="Only system cards with this deployment tag (parallel, distributed, hardware).")
@click.option("--lossless/--lossy", default=None, help="Only lossless (or only lossy) methods.")
@click.option("--runnable", is_flag=True, help="Only methods an installed plugin implements.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of cards.")
def list_cards(lossless: bool | None, runnable: bool, as_json: bool, **facets: str | None) -> None:
    """List catalogue cards, filtered on any facet."""
    registry = _registry()
    cards = [c for c in registry.filter(lossless=lossless, **facets) if not runnable or registry.is_runnable(c.id)]
    if as_json:
        click.echo(json.dumps([_card_json(c, registry.is_runnable(c.id)) for c in cards], indent=2))
        return
    rows = [
        [
            c.id,
            c.name,
            c.generation.value if c.generation else "-",
            c.refinement.value,
            c.acceptance.value,
            "yes" if c.lossless else "no",
            str(c.paper.year) if c.paper else "-",
            "yes" if registry.is_runnable(c.id) else "",
        ]
        for c in cards
    ]
    _print_table(
        ["id", "name", "generation", "refinement", "acceptance", "lossless", "year", "runnable"],
        rows,
        title=f"{len(cards)} methods",
    )


def _how_to_run(card: MethodCard, registry) -> list[str]:
    """How to run the card beyond its quickstart (which ``show`` prints on its own): in vLLM, or which
    package to install when no installed plugin runs it."""
    lines = []
    if card.id in registry.methods:
        runs_in_vllm = card.native_vllm() is None or Engine.vllm_specplug in card.engines  # else natively only
        if runs_in_vllm and "target_model" not in {str(n) for n in registry.methods[card.id].needs}:  # self-drafters cannot
            config = json.dumps({"model": f"specplug.vllm.{card.id}", "num_speculative_tokens": 5})
            lines.append(f"vllm serve MODEL --speculative-config '{config}'   (options: specplug vllm-config {card.id} --option KEY=VALUE)")
    native = card.native_vllm()
    if native:
        config = {"method": native.vllm_method, "num_speculative_tokens": 5, **native.config}
        lines.append(f"vllm serve MODEL --speculative-config '{json.dumps(config)}'   (vLLM native)")
    for impl in card.implementations:
        if impl.package and card.id not in registry.methods and card.id not in registry.verifiers:
            lines += [WHEELHOUSE_BUILD, f"{WHEELHOUSE_INSTALL} {impl.package}"]
            break
    return lines


def _quickstart_lines(card: MethodCard) -> list[str]:
    """The card's quickstart as ``show`` prints it: where to run it, the commands, what to expect."""
    if not card.quickstart:
        return []
    expect = (
        "the JSON's 'identical' is true: the output equals plain decoding"
        if card.lossless
        else "lossy: the output may differ from plain decoding ('identical' may be false)"
    )
    return [
        "", "quickstart (from the root of a specplug checkout; replace PROMPT)",
        *(f"  {command}" for command in card.quickstart),
        f"  ({expect})",
    ]


@cli.command("show")
@click.argument("method_id")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def show(method_id: str, as_json: bool) -> None:
    """Show one card: facets, paper, implementations and how to run it."""
    registry = _registry()
    try:
        card = registry.card(method_id)
    except UnknownIdError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(_card_json(card, registry.is_runnable(card.id)), indent=2))
        return
    out = [f"{card.name}  ({card.id})", "", card.summary, ""]
    facets = [
        ("scope", card.scope.value),
        ("generation", card.generation.value if card.generation else "any drafter"),
        ("refinement", card.refinement.value),
        ("acceptance", card.acceptance.value),
    ]
    if card.optional_acceptance:
        facets.append(("optional", ", ".join(a.value for a in card.optional_acceptance)))
    facets += [
        ("lossless", "yes" if card.lossless else "no"),
        ("training", card.training.value),
        ("modalities", ", ".join(m.value for m in card.modalities)),
        ("survey section", card.survey_section or "-"),
        ("status", card.status.value),
    ]
    if card.aliases:
        facets.append(("aliases", ", ".join(card.aliases)))
    if card.related:
        facets.append(("related", ", ".join(card.related)))
    if card.deployment:
        facets.append(("deployment", ", ".join(card.deployment)))
    width = max(len(k) for k, _ in facets)
    out += [f"{k:<{width}}  {v}" for k, v in facets]
    if card.paper:
        p = card.paper
        out += ["", "paper", f"  {p.title}", f"  {p.author_line} ({p.venue_label})"]
        if p.link:
            out.append(f"  {p.link}")
        if p.note:
            out.append(f"  note: {p.note}")
    out += ["", "implementations"]
    if card.implementations:
        for impl in card.implementations:
            extra = f" method={impl.vllm_method}" if impl.vllm_method else ""
            extra += f" package={impl.package}" if impl.package else ""
            extra += f" level={impl.level}" if impl.level else ""
            extra += f" needs={','.join(impl.needs)}" if impl.needs else ""
            extra += f" options={','.join(impl.options)}" if impl.options else ""
            extra += f" ({impl.notes})" if impl.notes else ""
            out.append(f"  {impl.engine.value}{extra}")
    else:
        out.append("  none yet")
    installed = registry.method_sources.get(card.id) or registry.verifier_sources.get(card.id)
    out.append(f"  installed here: {installed or 'no'}")
    out += _quickstart_lines(card)
    how = _how_to_run(card, registry)
    if how:
        out += ["", "how to run"] + [f"  {line}" for line in how]
    if card.caveats:
        out += ["", "caveats", f"  {card.caveats}"]
    click.echo("\n".join(out))


@cli.command("tree")
def tree() -> None:
    """The survey's taxonomy with the number of cards in each category."""
    registry = _registry()
    for depth, node in registry.taxonomy.walk():
        count = ""
        if node.facet and node.value:
            count = f"  [{sum(1 for _ in registry.filter(**{node.facet: node.value}))}]"
        section = f"  (survey {node.survey_section})" if node.survey_section else ""
        click.echo(f"{'  ' * depth}{node.title}{count}{section}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print plugin records as JSON.")
def plugins(as_json: bool) -> None:
    """Every plugin with its version, hooks, and the error of any that failed to load."""
    registry = _registry()
    if as_json:
        click.echo(json.dumps([vars(i) | {"ok": i.ok} for i in registry.plugins], indent=2))
        return
    rows = [
        [
            i.name,
            i.distribution or ("specplug (built in)" if i.builtin else "-"),
            i.version or "-",
            ", ".join(h.removeprefix("specplug_") for h in i.hooks) or "-",
            "ok" if i.ok else f"FAILED: {i.error}",
        ]
        for i in registry.plugins
    ]
    _print_table(["plugin", "distribution", "version", "hooks", "status"], rows)


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate card files (YAML) against the MethodCard schema."""
    failed = 0
    for path in files:
        try:
            card = load_card_file(path)
        except RegistryError as err:
            failed += 1
            click.echo(str(err), err=True)
        else:
            click.echo(f"{path}: ok ({card.id})")
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} file(s) invalid")


@cli.command("schema")
@click.option("--taxonomy", is_flag=True, help="The schema of registry/taxonomy.yaml instead of a card.")
def schema(taxonomy: bool) -> None:
    """Print the JSON Schema of a method card, to validate cards elsewhere."""
    from specplug.taxonomy import Taxonomy

    model = Taxonomy if taxonomy else MethodCard
    click.echo(json.dumps(model.model_json_schema(), indent=2))


def main() -> None:
    cli(prog_name="specplug")
