"""Trained draft heads in vLLM's own layouts: Medusa, EAGLE, EAGLE-3.

This package imports torch and transformers; nothing imports it at specplug's start (the CLI's
``train`` group and the head proposers load it when they run).

- :class:`MedusaHeads` (``MedusaModel``): ``forward(hidden [n, H]) -> logits [K, n, V]``;
- :class:`EagleHead` (Llama-EAGLE, ``EagleLlamaForCausalLM``) and :class:`Eagle3Head`
  (``LlamaForCausalLMEagle3``): ``forward(input_ids [n], features, position_ids [n],
  past_key_values=DynamicCache | None, attention_mask=4D additive | None) -> hidden [n, H]`` and
  ``logits(hidden)``; the KV cache rolls back like the target's (crop / index-select its layers);
- ``head.save_pretrained(folder, metadata)`` writes ``config.json`` + ``model.safetensors`` as vLLM
  loads them and ``specplug_head.json`` (:class:`HeadMetadata`);
- :func:`load_head` reads a folder back for a target and refuses a head made for another model.
"""

from __future__ import annotations

from pathlib import Path

from specplug.heads.common import (
    METADATA_FILE,
    HeadMetadata,
    HeadMismatchError,
    draft_llama_config,
    target_fingerprint,
    target_summary,
)
from specplug.heads.eagle import EagleHead
from specplug.heads.eagle3 import Eagle3Head, default_aux_layers
from specplug.heads.medusa import MedusaHeads

__all__ = [
    "HEAD_CLASSES",
    "METADATA_FILE",
    "Eagle3Head",
    "EagleHead",
    "HeadMetadata",
    "HeadMismatchError",
    "MedusaHeads",
    "default_aux_layers",
    "draft_llama_config",
    "load_head",
    "target_fingerprint",
    "target_summary",
]

#: method id -> head class
HEAD_CLASSES = {"medusa": MedusaHeads, "eagle": EagleHead, "eagle3": Eagle3Head}


def load_head(folder: str | Path, target_model, check_target: bool = True):
    """``(head module, HeadMetadata)`` for a head folder, built on ``target_model`` (a transformers
    causal LM: EAGLE heads share its embeddings and LM head). Raises :class:`HeadMismatchError` when
    the folder is not a specplug head or was trained for another model (both fingerprints named)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise HeadMismatchError(f"head folder {folder} does not exist; train one with 'specplug train'")
    metadata = HeadMetadata.read(folder)
    cls = HEAD_CLASSES.get(metadata.method)
    if cls is None:
        raise HeadMismatchError(f"{folder}: unknown head method {metadata.method!r}; known: {', '.join(HEAD_CLASSES)}")
    if check_target:
        metadata.check_target(target_model, folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).exists():
            raise HeadMismatchError(f"{folder} has no {name}: the head was not saved completely; retrain or re-export it")
    head = cls.from_folder(folder, target_model)
    head.eval()
    return head, metadata
