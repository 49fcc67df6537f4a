import json

import pytest
from click.testing import CliRunner

from specplug_rest import plugin
from specplug_rest.datastore import Datastore, DatastoreError
from specplug_rest.tokenizer_id import fingerprint_for_model


def test_build_datastore_from_txt_and_use_it(tmp_path, corpus, tokenizer_dir, other_tokenizer_dir, rest_cli):
    out = tmp_path / "ds"
    result = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(corpus), str(out), "--model", str(tokenizer_dir)])
    assert result.exit_code == 0, result.output
    store = Datastore.open(out)
    assert store.header["num_documents"] == corpus.read_text().count("\n\n") + 1
    assert store.fingerprint == fingerprint_for_model(str(tokenizer_dir))["fingerprint"]
    # the method's factory checks the tokenizer of the run's model
    proposer = plugin.build_proposer(plugin.RestOptions(datastore=str(out), model=str(tokenizer_dir)))
    assert proposer.datastore.header["num_tokens"] > 500
    with pytest.raises(DatastoreError, match="built for tokenizer"):
        plugin.build_proposer(plugin.RestOptions(datastore=str(out), model=str(other_tokenizer_dir)))
    info = CliRunner().invoke(rest_cli, ["rest", "info", str(out)])
    assert info.exit_code == 0 and json.loads(info.output)["format_version"] == 1
    again = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(corpus), str(out), "--model", str(tokenizer_dir)])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_build_datastore_from_jsonl_text_and_turns(tmp_path, tokenizer_dir, rest_cli):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"text": "warm the olive oil"}) + "\n" + json.dumps({"turns": ["cut the onion", "taste the sauce"]}) + "\n"
    )
    result = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(corpus), str(tmp_path / "ds"), "-m", str(tokenizer_dir)])
    assert result.exit_code == 0, result.output
    assert Datastore.open(tmp_path / "ds").header["num_documents"] == 3


def test_bad_corpus_is_a_clear_error(tmp_path, tokenizer_dir, rest_cli):
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"title": "no text"}\n')
    result = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(bad), str(tmp_path / "ds"), "-m", str(tokenizer_dir)])
    assert result.exit_code != 0 and '"text" string or a "turns" list' in result.output
    result = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(tmp_path / "c.csv"), str(tmp_path / "ds"), "-m", str(tokenizer_dir)])
    assert result.exit_code != 0 and "does not exist" in result.output
