import json

import numpy as np
import pytest

from specplug_rest.datastore import HEADER_NAME, Datastore, DatastoreError, write_datastore
from specplug_rest.proposer import RestOptions, RestProposer
from specplug_rest.suffix_array import build_suffix_array

TOK = {"name": "tiny", "vocab_size": 50, "fingerprint": "sha256:" + "ab" * 32}


def test_round_trip_is_memory_mapped_and_exact(tmp_path):
    docs = [[1, 2, 3], [4, 5], [], [1, 2]]
    write_datastore(tmp_path / "ds", docs, TOK, source="x.txt")
    store = Datastore.open(tmp_path / "ds")
    assert isinstance(store.tokens, np.memmap) and isinstance(store.suffix_array, np.memmap)
    assert store.tokens.tolist() == [1, 2, 3, -1, 4, 5, -1, 1, 2]
    assert store.suffix_array.tolist() == build_suffix_array(np.array(store.tokens)).tolist()
    assert store.header["num_documents"] == 3 and store.header["source"] == "x.txt"
    assert store.fingerprint == TOK["fingerprint"]
    assert Datastore.open(tmp_path / "ds" / HEADER_NAME).path == store.path  # the header file works too


def test_missing_datastore_names_the_build_command(tmp_path):
    with pytest.raises(DatastoreError, match="specplug rest build-datastore"):
        Datastore.open(tmp_path / "nope")
    with pytest.raises(DatastoreError, match="does not exist"):
        RestProposer.from_options(RestOptions(datastore=str(tmp_path / "nope")))


def test_interrupted_build_without_header_is_refused(tmp_path):
    write_datastore(tmp_path / "ds", [[1, 2]], TOK)
    (tmp_path / "ds" / HEADER_NAME).unlink()
    with pytest.raises(DatastoreError, match="not a REST datastore"):
        Datastore.open(tmp_path / "ds")


def test_other_format_version_and_bad_magic_are_refused(tmp_path):
    write_datastore(tmp_path / "ds", [[1, 2]], TOK)
    header_path = tmp_path / "ds" / HEADER_NAME
    header = json.loads(header_path.read_text())
    header_path.write_text(json.dumps({**header, "format_version": 99}))
    with pytest.raises(DatastoreError, match="format version 99"):
        Datastore.open(tmp_path / "ds")
    header_path.write_text(json.dumps({**header, "magic": "something-else"}))
    with pytest.raises(DatastoreError, match="magic"):
        Datastore.open(tmp_path / "ds")


def test_truncated_arrays_are_refused(tmp_path):
    write_datastore(tmp_path / "ds", [[1, 2, 3]], TOK)
    np.save(tmp_path / "ds" / "tokens.npy", np.array([1, 2], dtype=np.int32))
    with pytest.raises(DatastoreError, match="header says 3 tokens"):
        Datastore.open(tmp_path / "ds")


def test_tokenizer_mismatch_is_refused_at_start(tmp_path):
    write_datastore(tmp_path / "ds", [[1, 2]], TOK)
    good = RestOptions(datastore=str(tmp_path / "ds"), tokenizer_fingerprint=TOK["fingerprint"])
    assert RestProposer.from_options(good).datastore.fingerprint == TOK["fingerprint"]
    bad = RestOptions(datastore=str(tmp_path / "ds"), tokenizer_fingerprint="sha256:" + "cd" * 32)
    with pytest.raises(DatastoreError, match="built for tokenizer 'tiny'.*Rebuild"):
        RestProposer.from_options(bad)


def test_existing_datastore_is_not_overwritten_silently(tmp_path):
    write_datastore(tmp_path / "ds", [[1, 2]], TOK)
    with pytest.raises(DatastoreError, match="--overwrite"):
        write_datastore(tmp_path / "ds", [[3]], TOK)
    write_datastore(tmp_path / "ds", [[3]], TOK, overwrite=True)
    assert Datastore.open(tmp_path / "ds").tokens.tolist() == [3]
