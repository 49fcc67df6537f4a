"""Fixtures: a tiny word-level tokenizer folder trained on the test corpus (built in milliseconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "kitchen_and_code.txt"


def make_tokenizer_dir(path: Path, extra_words: tuple[str, ...] = ()) -> Path:
    """A folder that ``AutoTokenizer.from_pretrained`` loads and ``resolve_model`` accepts."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "<eos>"])
    tok.train_from_iterator([CORPUS.read_text(encoding="utf-8"), " ".join(extra_words)], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<eos>")
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(path))
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))  # resolve_model wants a model folder
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The test corpus, a text file (a fixture, so that tests do not import this conftest by name: from
    the repository root another conftest has that name)."""
    return CORPUS


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    return make_tokenizer_dir(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def other_tokenizer_dir(tmp_path_factory) -> Path:
    return make_tokenizer_dir(tmp_path_factory.mktemp("tok2"), extra_words=("zebra", "quokka"))


@pytest.fixture
def rest_cli():
    """A root command group extended through the plugin's own hook, as the specplug CLI does."""
    import click

    from specplug_rest import plugin

    @click.group()
    def cli():
        pass

    plugin.specplug_register_commands(cli)
    return cli
