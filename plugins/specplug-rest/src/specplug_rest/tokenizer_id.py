"""Tokenizer fingerprints: which tokenizer a datastore's token ids belong to.

The fingerprint is ``"sha256:" + hex`` over the tokenizer's model (vocabulary and merges, from the
fast tokenizer's JSON), its full vocabulary including added tokens, and its length. Two tokenizers
with the same fingerprint map text to the same ids; the folder or hub name does not enter it.

This module imports transformers lazily; the proposer itself never does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["fingerprint_for_model", "tokenizer_info"]


def tokenizer_info(tokenizer: Any, name: str | None = None) -> dict[str, Any]:
    """``{"name", "vocab_size", "fingerprint"}`` for a transformers tokenizer."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = json.loads(backend.to_str()).get("model", {})
        digest.update(json.dumps(model, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    digest.update(f"|len={len(tokenizer)}".encode())
    return {
        "name": name or getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "fingerprint": "sha256:" + digest.hexdigest(),
    }


def load_tokenizer(model: str):
    """The tokenizer of a ``--model`` value (``smollm2-135m``, a folder, or a hub id)."""
    from transformers import AutoTokenizer  # lazy: only the build command and the check need it

    from specplug.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model))


def fingerprint_for_model(model: str) -> dict[str, Any]:
    """Tokenizer info for a ``--model`` value."""
    return tokenizer_info(load_tokenizer(model), name=model)
