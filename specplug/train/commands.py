"""``specplug train``: make training data, then train a head with a registered objective.

``specplug train data`` is the training kit's own; every other subcommand is made from an
:class:`~specplug.train.spec.ObjectiveSpec` a plugin registers (``specplug train <id>``: the common
options below plus the spec's ``cli_options``). Loaded lazily by the CLI (``LAZY_COMMANDS``); torch
is imported only when a command runs.
"""

from __future__ import annotations

import click

GROUP_HELP = """Train speculative-decoding heads for a target model, on CPU, in vLLM's formats.

\b
Pipeline (artifacts in the cache, keyed by the target's fingerprint; ID: a command below):
  specplug train data --model smollm2-135m --out DATA
  specplug train ID   --model smollm2-135m --data DATA [--budget default]
  vllm serve TARGET --speculative-config '{"method": ID, "model": HEAD, "num_speculative_tokens": 4}'

\b
What each step costs for SmolLM2-135M on 2 CPU cores (measured here, machine shared):
  data     vLLM generates ~190 tok/s at batch 26, plus ~60-100 s per engine start
           (--chunk-size prompts per engine); teacher-forced hidden states ~370 tok/s.
           All 415 training prompts x 256 tokens: ~25 min; 150 prompts x 96 tokens: ~5 min.
           Disk: 4 layers x 576 x 2 bytes = 4.6 KB per token (bfloat16).
{costs}
  --budget tiny: 40 short steps (seconds on a tiny random model; for tests).

Training prompts: --prompts magpie:N (instructions the target writes itself, grown in resumable
rounds), or Spec-Bench without the first 5 prompts of each category (the benchmarks measure on
those); every prompt is checked against Spec-Bench: see docs/guides/training.md.
"""


def cost_lines(objectives) -> str:
    """Each objective's :attr:`~specplug.train.spec.ObjectiveSpec.cost` as lines of the group's help."""
    lines = []
    for spec in sorted(objectives.values(), key=lambda spec: spec.id):
        for i, line in enumerate((spec.cost or "").splitlines()):
            lines.append(f"  {spec.id if i == 0 else '':<8} {line.strip()}")
    return "\n".join(lines)


def parse_layers(value: str | None) -> list[int] | None:
    """``"-1,2,15"`` as layer ids (``None`` when empty); a ``click.BadParameter`` otherwise."""
    if not value:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated layer ids, e.g. -1,2,15,27") from None


def layer_ids(ctx, param, value: str | None) -> list[int] | None:
    """A ``click.option`` callback for comma-separated layer ids (see :func:`parse_layers`)."""
    return parse_layers(value)


class TrainGroup(click.Group):
    """``data`` plus one command per registered objective (the registry is read when asked)."""

    def _objectives(self) -> dict:
        from specplug.registry import get_registry

        return get_registry().objectives

    def format_help_text(self, ctx, formatter) -> None:
        self.help = GROUP_HELP.replace("{costs}", cost_lines(self._objectives()))
        super().format_help_text(ctx, formatter)

    def list_commands(self, ctx) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._objectives()))

    def get_command(self, ctx, name: str):
        command = super().get_command(ctx, name)
        if command is None and name in self._objectives():
            command = objective_command(self._objectives()[name])
        return command


@click.group(cls=TrainGroup, help=GROUP_HELP.splitlines()[0])
def train() -> None:
    pass


@train.command("data")
@click.option("--model", default="smollm2-135m", show_default=True, help="Target: smollm2-135m or a Hugging Face folder.")
@click.option("--out", default=None, help="Data folder (default: the cache, keyed by the target's fingerprint).")
@click.option("--prompts", default="spec-bench-train", show_default=True,
              help="magpie:N (N instructions the target writes itself, Magpie; grows across runs), spec-bench-train "
                   "(Spec-Bench minus the benchmark prompts) or a jsonl file; every prompt is checked against Spec-Bench.")
@click.option("--limit", type=int, default=None, help="Use only this many prompts (round-robin over categories).")
@click.option("--max-new-tokens", type=int, default=256, show_default=True, help="Response length cap (greedy, stops at EOS).")
@click.option("--max-prompt-tokens", type=int, default=1024, show_default=True, help="Skip longer prompts.")
@click.option("--layers", default=None,
              help="Hidden-state layers to store (default: -1 and those the registered objectives need, e.g. EAGLE-3's 2,L/2,L-3).")
@click.option("--engine", type=click.Choice(["vllm", "transformers", "reference"]), default="vllm", show_default=True,
              help="Generate in vLLM (CPU, batched), with transformers (batched; the --device cuda route) or in the reference engine.")
@click.option("--chunk-size", type=int, default=128, show_default=True, help="Prompts per vLLM engine process.")
@click.option("--shard-size", type=int, default=16, show_default=True, help="Sequences per shard file.")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", show_default=True,
              help="Storage dtype of the hidden states.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (cuda: with --engine transformers).")
@click.option("--compute-dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="Dtype of the target's forwards for the hidden states (bfloat16: faster, moves the features; see the guide).")
@click.option("--round-size", type=int, default=512, show_default=True, help="Magpie prompts kept per round (a round = synthesis, responses, states).")
@click.option("--max-num-seqs", type=int, default=32, show_default=True, help="Sequences generated at once (vLLM, transformers).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the Magpie synthesis.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def data_command(model, out, prompts, limit, max_new_tokens, max_prompt_tokens, layers, engine, chunk_size, shard_size, dtype,
                 device, compute_dtype, round_size, max_num_seqs, seed, quiet):
    """Self-distilled training data: the target's own responses and its hidden states (resumable)."""
    from specplug.bench.prompts import PromptError
    from specplug.models import ModelLoadError
    from specplug.train.data import DataConfig, DataError, build_data

    cfg = DataConfig(model=model, out=out, prompts=prompts, limit=limit, max_new_tokens=max_new_tokens,
                     max_prompt_tokens=max_prompt_tokens, layers=parse_layers(layers), engine=engine,
                     chunk_size=chunk_size, shard_size=shard_size, dtype=dtype, quiet=quiet, device=device,
                     compute_dtype=compute_dtype, round_size=round_size, max_num_seqs=max_num_seqs, seed=seed)
    from specplug.train.overlap import OverlapError

    try:
        build_data(cfg, log=lambda m: click.echo(m, err=True))
    except (DataError, PromptError, ModelLoadError, OverlapError) as err:
        raise click.ClickException(str(err)) from None


def _train_options(fn, default_lr: float):
    options = [
        click.option("--model", default="smollm2-135m", show_default=True, help="Target: smollm2-135m or a Hugging Face folder."),
        click.option("--data", default=None, help="Data folder from 'specplug train data' (default: the cache)."),
        click.option("--out", default=None, help="Head folder (default: the cache, keyed by the target's fingerprint)."),
        click.option("--budget", default="default", show_default=True, help="tiny, default (60 min) or minutes."),
        click.option("--lr", type=float, default=None, help=f"Learning rate (default: {default_lr:g})."),
        click.option("--batch-tokens", type=int, default=None, help="Padded tokens per batch."),
        click.option("--max-len", type=int, default=None, help="Longest sequence trained on (keeps its end)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--max-steps", type=int, default=None, help="Stop after this many steps in all (resume later)."),
        click.option("--checkpoint-every", type=float, default=120.0, show_default=True, help="Seconds between checkpoints."),
        click.option("--eval-positions", type=int, default=5, show_default=True, help="Draft positions in the held-out accuracy."),
        click.option("--restart", is_flag=True, help="Ignore a saved checkpoint and start over."),
        click.option("--schedule", type=click.Choice(["cosine", "constant"]), default="cosine", show_default=True,
                     help="Learning rate after warm-up: cosine decay to 10% over the budget, or constant."),
        click.option("--device", default="cpu", show_default=True, help="cpu or cuda."),
        click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
                     help="bfloat16: autocast the head's forward (the GPU route)."),
        click.option("--data-fraction", type=float, default=1.0, show_default=True,
                     help="Train on the first part of the data (same held-out set): points of an accuracy-vs-data curve."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run(method: str, **kwargs) -> None:
    from specplug.kit.heads import HeadMismatchError
    from specplug.models import ModelLoadError
    from specplug.train.data import DataError
    from specplug.train.trainer import TrainConfig, TrainError, train_head

    try:
        train_head(TrainConfig(method=method, **kwargs), log=click.echo)
    except (TrainError, DataError, HeadMismatchError, ModelLoadError) as err:
        raise click.ClickException(str(err)) from None


def objective_command(spec) -> click.Command:
    """The ``specplug train <id>`` command of an objective: the common options, then its own."""

    def command(**kwargs):
        _run(spec.id, **kwargs)

    for option in reversed(spec.cli_options):
        command = option(command)
    command = _train_options(command, spec.default_lr)
    return click.command(spec.id, help=spec.help)(command)
