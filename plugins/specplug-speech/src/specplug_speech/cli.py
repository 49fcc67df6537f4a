"""``specplug speech ...``: distil a draft decoder for a Whisper target (added to the CLI by the plugin hook)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["labels_cache_file", "speech"]


def labels_cache_file(target, utterances: int, voices: str) -> Path:
    """Where the pseudo-labels (target transcripts and encoder outputs) of ``utterances`` training
    utterances are kept, shared by every draft trained on them (distilled decoders, early exits)."""
    from specplug.kit.whisper_draft import default_draft_dir

    base = default_draft_dir(target, 0)
    return base.with_name(f"pseudo-labels-{base.name}-{utterances}{'-varied' if voices == 'varied' else ''}.pt")


@click.group()
def speech() -> None:
    """Speech recognition (Whisper): distil a draft decoder (distil_whisper, specasr) or train an early exit (whisper_early_exit)."""


@speech.command("distill")
@click.option("--model", "-m", "model_name", default="whisper-tiny.en", show_default=True, help="The Whisper target.")
@click.option("--utterances", type=int, default=300, show_default=True,
              help="Training utterances: sentences of the train split synthesised with espeak-ng (never the benchmark's).")
@click.option("--voices", type=click.Choice(["varied", "plain"]), default="varied", show_default=True,
              help="varied: several espeak-ng voices and speeds; plain: the benchmark's en-us voice only.")
@click.option("--layers", default="0,3", show_default=True, help="Target decoder layers the draft's layers start from (distil-whisper: first and last).")
@click.option("--vocab-size", type=int, default=4096, show_default=True, help="Draft vocabulary: the most frequent ids of the training transcripts.")
@click.option("--steps", type=int, default=400, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Draft folder (default: the cache folder distil_whisper and specasr read).")
def distill_command(model_name, utterances, voices, layers, vocab_size, steps, batch_size, lr, seed, threads, out):
    """Distil a draft decoder for MODEL on synthesised speech and print its folder as the last line."""
    import torch

    from specplug.kit.seq2seq import decoder_prompt, load_wav
    from specplug.kit.whisper_draft import default_draft_dir
    from specplug.models import ModelLoadError, load_model, resolve_model
    from specplug.testing.speech import TTS_MISSING, have_tts, speech_corpus
    from specplug_speech.distill import distill

    try:
        init_layers = [int(x) for x in layers.replace(" ", "").split(",") if x]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer numbers such as 0,3; got {layers!r}", param_hint="--layers") from None
    for name, value in (("--utterances", utterances), ("--steps", steps), ("--batch-size", batch_size), ("--vocab-size", vocab_size)):
        if value < 1 or (name == "--utterances" and value < 2):
            raise click.BadParameter(f"must be >= {2 if name == '--utterances' else 1}, got {value}", param_hint=name)
    if not have_tts():
        raise click.ClickException(f"distill {TTS_MISSING}")
    torch.set_num_threads(threads)
    try:
        target, tokenizer = load_model(model_name, dtype="float32", device="cpu")
    except ModelLoadError as err:
        raise click.ClickException(str(err)) from None
    if not getattr(target.config, "is_encoder_decoder", False):
        raise click.ClickException(f"{model_name} is not a Whisper (encoder-decoder) model")
    target.requires_grad_(False)
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model(model_name))
    corpus = speech_corpus("train", utterances, varied=voices == "varied")
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    log(f"{len(corpus)} training utterances (train split), {steps} steps of {batch_size}, draft layers {init_layers}")
    folder = out or default_draft_dir(target, len(init_layers))
    try:
        figures = distill(target, tokenizer, extractor, [load_wav(p) for p, _ in corpus], [t for _, t in corpus],
                          decoder_prompt(tokenizer), int(tokenizer.eos_token_id), init_layers, vocab_size, steps, folder,
                          batch_size=batch_size, lr=lr, seed=seed, log=log,
                          labels_cache=labels_cache_file(target, utterances, voices))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"draft agreement with the target's next token (held out): {figures['agreement_before']} before, "
               f"{figures['agreement_after']} after {steps} steps ({figures['train_s']} s)")
    click.echo(str(folder))


@speech.command("train-exit")
@click.option("--model", "-m", "model_name", default="whisper-tiny.en", show_default=True, help="The Whisper target.")
@click.option("--utterances", type=int, default=300, show_default=True,
              help="Training utterances: sentences of the train split synthesised with espeak-ng (never the benchmark's).")
@click.option("--voices", type=click.Choice(["varied", "plain"]), default="varied", show_default=True,
              help="varied: several espeak-ng voices and speeds; plain: the benchmark's en-us voice only.")
@click.option("--exit-layer", type=int, default=2, show_default=True, help="The draft runs the target's first N decoder layers, then the adapter.")
@click.option("--vocab-size", type=int, default=4096, show_default=True, help="Draft vocabulary: the most frequent ids of the training transcripts.")
@click.option("--steps", type=int, default=1500, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Exit folder (default: the cache folder whisper_early_exit reads).")
def train_exit_command(model_name, utterances, voices, exit_layer, vocab_size, steps, batch_size, lr, seed, threads, out):
    """Train a Kangaroo exit adapter on MODEL's first decoder layers (synthesised speech) and print its folder as the last line."""
    import torch

    from specplug.kit.seq2seq import decoder_prompt, load_wav
    from specplug.models import ModelLoadError, load_model, resolve_model
    from specplug.testing.speech import TTS_MISSING, have_tts, speech_corpus
    from specplug_speech.distill import labelled
    from specplug_speech.early_exit import default_exit_dir
    from specplug_speech.exit_training import train_early_exit

    for name, value in (("--utterances", utterances), ("--steps", steps), ("--batch-size", batch_size), ("--vocab-size", vocab_size)):
        if value < 1 or (name == "--utterances" and value < 2):
            raise click.BadParameter(f"must be >= {2 if name == '--utterances' else 1}, got {value}", param_hint=name)
    if not have_tts():
        raise click.ClickException(f"train-exit {TTS_MISSING}")
    torch.set_num_threads(threads)
    try:
        target, tokenizer = load_model(model_name, dtype="float32", device="cpu")
    except ModelLoadError as err:
        raise click.ClickException(str(err)) from None
    if not getattr(target.config, "is_encoder_decoder", False):
        raise click.ClickException(f"{model_name} is not a Whisper (encoder-decoder) model")
    layers = int(target.config.decoder_layers)
    if not 1 <= exit_layer < layers:
        raise click.BadParameter(f"must be 1..{layers - 1} ({model_name} has {layers} decoder layers), got {exit_layer}", param_hint="--exit-layer")
    target.requires_grad_(False)
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model(model_name))
    corpus = speech_corpus("train", utterances, varied=voices == "varied")
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    log(f"{len(corpus)} training utterances (train split, {voices} voices), exit after layer {exit_layer}, {steps} steps of {batch_size}")
    prompt, eos = decoder_prompt(tokenizer), int(tokenizer.eos_token_id)
    data = labelled(target, extractor, [load_wav(p) for p, _ in corpus], prompt, eos, labels_cache=labels_cache_file(target, utterances, voices), log=log)
    folder = out or default_exit_dir(target, exit_layer)
    figures = train_early_exit(target, tokenizer, data, [t for _, t in corpus], eos, exit_layer, vocab_size, steps, folder,
                               batch_size=batch_size, lr=lr, seed=seed, log=log)
    click.echo(f"exit agreement with the target's next token (held out): {figures['agreement_before']} untrained (plain early exit), "
               f"{figures['agreement_after']} trained ({figures['train_s']} s)")
    click.echo(str(folder))
