"""``specplug rest ...``: commands for REST datastores (added to the specplug CLI by the plugin hook)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from specplug_rest.datastore import Datastore, DatastoreError, write_datastore

__all__ = ["read_corpus", "rest"]


def read_corpus(path: Path) -> list[str]:
    """Documents of a corpus file.

    - ``.txt``: paragraphs separated by blank lines;
    - ``.jsonl``: one JSON object per line with a ``"text"`` string, or Spec-Bench-style ``"turns"``
      (a list of strings, each one document).
    """
    if not path.exists():
        raise click.BadParameter(f"corpus {path} does not exist", param_hint="CORPUS")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        text = path.read_text(encoding="utf-8")
        paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
        return [p for p in paragraphs if p]
    if suffix == ".jsonl":
        docs: list[str] = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise click.BadParameter(f"{path}:{lineno}: not JSON ({err})", param_hint="CORPUS") from None
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                docs.append(record["text"])
            elif isinstance(record, dict) and isinstance(record.get("turns"), list):
                docs.extend(t for t in record["turns"] if isinstance(t, str) and t.strip())
            else:
                raise click.BadParameter(
                    f"{path}:{lineno}: each line needs a \"text\" string or a \"turns\" list", param_hint="CORPUS"
                )
        return docs
    raise click.BadParameter(f"corpus must be .txt (paragraphs) or .jsonl, got {path.name}", param_hint="CORPUS")


@click.group()
def rest() -> None:
    """REST (retrieval-based speculative decoding): build and inspect datastores."""


@rest.command("build-datastore")
@click.argument("corpus", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True, help="Model whose tokenizer tokenizes the corpus (smollm2-135m, a folder, or a hub id).")
@click.option("--overwrite", is_flag=True, help="Replace an existing datastore at OUT.")
def build_datastore(corpus: Path, out: Path, model: str, overwrite: bool) -> None:
    """Tokenize CORPUS (.txt or .jsonl) and write a REST datastore directory OUT."""
    from specplug_rest.tokenizer_id import load_tokenizer, tokenizer_info

    docs = read_corpus(corpus)
    if not docs:
        raise click.ClickException(f"corpus {corpus} holds no text")
    started = time.perf_counter()
    tokenizer = load_tokenizer(model)
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    try:
        write_datastore(out, ids, tokenizer_info(tokenizer, name=model), source=corpus.name, overwrite=overwrite)
    except DatastoreError as err:
        raise click.ClickException(str(err)) from None
    store = Datastore.open(out)
    elapsed = time.perf_counter() - started
    click.echo(
        f"wrote {out}: {store.header['num_documents']} documents, {store.header['num_tokens']} tokens, "
        f"tokenizer {store.tokenizer_name} ({elapsed:.1f}s)"
    )


@rest.command("info")
@click.argument("datastore", type=click.Path(path_type=Path))
def info(datastore: Path) -> None:
    """Print a datastore's header."""
    try:
        store = Datastore.open(datastore)
    except DatastoreError as err:
        raise click.ClickException(str(err)) from None
    json.dump(store.header, sys.stdout, indent=2)
    click.echo()
