"""The REST datastore: a token corpus and its suffix array, on disk, memory-mapped.

Format (version 1): a directory holding three files::

    OUT/
      specplug-rest.json   header: magic, format_version, tokenizer {name, vocab_size, fingerprint},
                           num_tokens, num_documents, separator, dtypes, source
      tokens.npy           [num_tokens] int32: the documents' tokens, joined by the separator -1
      suffix_array.npy     [num_tokens] int32 (int64 past 2**31 tokens): start positions in suffix order

The separator -1 is never a query token, so no match crosses a document boundary, and continuations
stop at it. Both arrays are opened with ``numpy.load(mmap_mode="r")``: opening costs nothing and the
operating system pages in only the entries binary search touches.

The tokenizer fingerprint (see :mod:`specplug_rest.tokenizer_id`) ties a datastore to the tokenizer
that built it; :meth:`Datastore.check_tokenizer` refuses another one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specplug_rest.suffix_array import build_suffix_array

__all__ = ["Datastore", "DatastoreError", "FORMAT_VERSION", "MAGIC", "SEPARATOR", "write_datastore"]

MAGIC = "specplug-rest-datastore"
FORMAT_VERSION = 1
SEPARATOR = -1
HEADER_NAME = "specplug-rest.json"
TOKENS_NAME = "tokens.npy"
SA_NAME = "suffix_array.npy"
BUILD_HINT = "specplug rest build-datastore CORPUS OUT --model MODEL"


class DatastoreError(ValueError):
    """A datastore that is missing, damaged, of another format version, or built for another tokenizer."""


def write_datastore(
    out: str | os.PathLike,
    documents: list[np.ndarray] | list[list[int]],
    tokenizer: dict[str, Any],
    source: str = "",
    overwrite: bool = False,
) -> Path:
    """Write a datastore for ``documents`` (token id lists) into the directory ``out``.

    ``tokenizer`` is ``{"name", "vocab_size", "fingerprint"}``. The header is written last, so an
    interrupted build leaves a directory that :meth:`Datastore.open` refuses.
    """
    out = Path(out)
    if (out / HEADER_NAME).exists() and not overwrite:
        raise DatastoreError(f"{out} already holds a datastore; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise DatastoreError(f"{out} exists and is not a directory; a datastore is a directory")
    for key in ("name", "vocab_size", "fingerprint"):
        if key not in tokenizer:
            raise ValueError(f"tokenizer info needs {key!r}, got {sorted(tokenizer)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / HEADER_NAME).unlink(missing_ok=True)
    parts: list[np.ndarray] = []
    num_docs = 0
    for doc in documents:
        arr = np.asarray(doc, dtype=np.int64).reshape(-1)
        if arr.size == 0:
            continue
        if arr.min() < 0:
            raise ValueError("token ids must be >= 0 (negative ids are reserved for the separator)")
        if parts:
            parts.append(np.array([SEPARATOR], dtype=np.int64))
        parts.append(arr)
        num_docs += 1
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # [n]
    if tokens.size and tokens.max() >= 2**31:
        raise ValueError("token ids must fit in int32")
    sa = build_suffix_array(tokens)  # [n]
    sa_dtype = np.int32 if tokens.size < 2**31 else np.int64
    np.save(out / TOKENS_NAME, tokens.astype(np.int32))
    np.save(out / SA_NAME, sa.astype(sa_dtype))
    header = {
        "magic": MAGIC,
        "format_version": FORMAT_VERSION,
        "tokenizer": {k: tokenizer[k] for k in ("name", "vocab_size", "fingerprint")},
        "num_tokens": int(tokens.size),
        "num_documents": num_docs,
        "separator": SEPARATOR,
        "token_dtype": "int32",
        "suffix_array_dtype": np.dtype(sa_dtype).name,
        "source": source,
    }
    tmp = out / (HEADER_NAME + ".tmp")
    tmp.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / HEADER_NAME)
    return out


@dataclass(frozen=True)
class Datastore:
    """An opened datastore: its header and the two memory-mapped arrays."""

    path: Path
    header: dict[str, Any]
    tokens: np.ndarray  # [num_tokens] int32, memory-mapped
    suffix_array: np.ndarray  # [num_tokens] int32 or int64, memory-mapped

    @property
    def fingerprint(self) -> str:
        return self.header["tokenizer"]["fingerprint"]

    @property
    def tokenizer_name(self) -> str:
        return self.header["tokenizer"]["name"]

    @classmethod
    def open(cls, path: str | os.PathLike) -> Datastore:
        """Open the datastore at ``path`` (its directory, or the header file inside it)."""
        path = Path(path).expanduser()
        if path.name == HEADER_NAME:
            path = path.parent
        header_path = path / HEADER_NAME
        if not path.exists():
            raise DatastoreError(f"REST datastore {path} does not exist. Build one with: {BUILD_HINT}")
        if not header_path.exists():
            raise DatastoreError(
                f"{path} is not a REST datastore (no {HEADER_NAME}; an interrupted build leaves none). "
                f"Build one with: {BUILD_HINT}"
            )
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DatastoreError(f"{header_path}: unreadable header ({err}). Rebuild with: {BUILD_HINT}") from None
        if not isinstance(header, dict) or header.get("magic") != MAGIC:
            raise DatastoreError(f"{header_path}: not a specplug REST datastore header (magic {MAGIC!r} missing)")
        version = header.get("format_version")
        if version != FORMAT_VERSION:
            raise DatastoreError(
                f"{path}: datastore format version {version}, this specplug-rest reads version {FORMAT_VERSION}. "
                f"Rebuild it with: {BUILD_HINT}"
            )
        try:
            tokens = np.load(path / TOKENS_NAME, mmap_mode="r")
            sa = np.load(path / SA_NAME, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise DatastoreError(f"{path}: cannot read the token arrays ({err}). Rebuild with: {BUILD_HINT}") from None
        n = header.get("num_tokens")
        if tokens.shape != (n,) or sa.shape != (n,):
            raise DatastoreError(
                f"{path}: header says {n} tokens but tokens.npy has {tokens.shape} and suffix_array.npy "
                f"{sa.shape}. Rebuild with: {BUILD_HINT}"
            )
        return cls(path, header, tokens, sa)

    def check_tokenizer(self, fingerprint: str, name: str | None = None) -> None:
        """Refuse a datastore built for another tokenizer than ``fingerprint``'s."""
        if fingerprint != self.fingerprint:
            theirs = f" ({name})" if name else ""
            raise DatastoreError(
                f"REST datastore {self.path} was built for tokenizer {self.tokenizer_name!r} "
                f"(fingerprint {self.fingerprint[:19]}...) but the model's tokenizer{theirs} has fingerprint "
                f"{fingerprint[:19]}...: retrieved token ids would be meaningless. Rebuild the datastore for this "
                f"model: {BUILD_HINT}"
            )
