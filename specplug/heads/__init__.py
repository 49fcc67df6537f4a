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
    "save_random_head",
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


def save_random_head(method: str, model, folder: str | Path, seed: int = 0, draft_vocab: int | None = None,
                     num_heads: int = 3) -> Path:
    """An untrained ``method`` head for ``model`` (random weights) saved in ``folder`` as a trained one is.

    For tests and smoke runs of the pipeline on targets nobody trained a head for. ``draft_vocab``:
    EAGLE-3's reduced vocabulary size (a random subset of the target's ids; ``None``: the whole
    vocabulary). Medusa starts as identity blocks, so its blocks are perturbed to make the heads
    disagree. torch's global random state is left as it was.
    """
    import numpy as np
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if method == "eagle":
            head = EagleHead.for_target(model)
        elif method == "eagle3":
            vocab = int(model.get_output_embeddings().weight.shape[0])
            ids = None if draft_vocab is None else np.random.default_rng(seed).choice(vocab, size=min(draft_vocab, vocab), replace=False)
            head = Eagle3Head.for_target(model, draft_token_ids=ids)
        elif method == "medusa":
            head = MedusaHeads.for_target(model, num_heads=num_heads)
            with torch.no_grad():
                for block in head.blocks:
                    for layer in block.layers:
                        layer.weight.normal_(0, 0.5)
        else:
            raise ValueError(f"unknown head kind {method!r}: use one of {', '.join(HEAD_CLASSES)}")
    finally:
        torch.random.set_rng_state(state)
    draft_vocab_size = int(getattr(head, "draft_vocab_size", model.get_output_embeddings().weight.shape[0]))
    metadata = HeadMetadata(method=method, target=target_summary(model), hidden_state_layers=list(head.hidden_state_layers),
                            draft_vocab_size=draft_vocab_size)
    folder = Path(folder)
    head.save_pretrained(folder, metadata)
    return folder
