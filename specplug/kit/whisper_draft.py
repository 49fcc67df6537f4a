"""A small draft decoder for a Whisper target (distil-whisper's shape), shared by the speech drafters.

distil-whisper (Gandhi, von Platen, Rush; arXiv 2311.00430) keeps the teacher's encoder and
shrinks the decoder to one or two layers initialised from the teacher's (its first and last), then
trains it by distillation on the teacher's own transcripts. As a draft it needs no encoder of its own:
:func:`build_draft_decoder` returns a ``WhisperForConditionalGeneration``-shaped model whose encoder,
token and position embeddings **are** the target's modules (shared, never copied), whose decoder
layers and final norm are copies of the chosen target layers (the trained part), and whose output
head scores only a reduced vocabulary (:class:`~specplug.kit.drafting.ReducedVocab`: the target's
output projection over 51,864 ids is a quarter of a decoder step on CPU; the target still verifies
over its whole vocabulary, so output stays lossless).

On disk a draft is a folder with ``decoder.safetensors`` (the trained layers and norm) and
``draft.json`` (the target's fingerprint, the initial layers, the vocabulary, training figures).
:func:`load_draft_decoder` refuses a draft trained for another target.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from specplug.kit.drafting import DraftCache, ReducedVocab
from specplug.kit.seq2seq import Seq2SeqTarget

__all__ = ["DraftDecoderError", "WhisperDraftCache", "build_draft_decoder", "default_draft_dir", "load_draft_decoder", "save_draft_decoder"]

DRAFT_FILE = "decoder.safetensors"
META_FILE = "draft.json"


class DraftDecoderError(ValueError):
    """A draft decoder folder that is missing or was trained for another target; the message names the fix."""


def default_draft_dir(target_model, num_layers: int = 2) -> Path:
    """``$SPECPLUG_CACHE/drafts/whisper-<fingerprint>-<L>L``: where ``specplug speech distill`` writes."""
    from specplug.kit.heads import target_fingerprint
    from specplug.models import cache_dir

    return cache_dir() / "drafts" / f"whisper-{target_fingerprint(target_model)}-{num_layers}L"


def build_draft_decoder(target, init_layers: Sequence[int], vocab: ReducedVocab | None = None):
    """A draft sharing ``target``'s encoder and embeddings, with copies of ``init_layers`` as its decoder.

    ``vocab``: score only these ids (a head of the target's output projection rows); ``None``: the full vocabulary.
    """
    from transformers import WhisperForConditionalGeneration

    layers = [int(i) for i in init_layers]
    total = int(target.config.decoder_layers)
    if not layers or any(not 0 <= i < total for i in layers):
        raise ValueError(f"draft layers {layers} must be 1 or more of the target's decoder layers 0..{total - 1}")
    config = copy.deepcopy(target.config)
    config.decoder_layers = len(layers)
    with torch.device("meta"):
        draft = WhisperForConditionalGeneration(config)
    source = target.model
    draft.model.encoder = source.encoder  # shared module: encoder_states() finds the target's output
    draft.model.decoder.embed_tokens = source.decoder.embed_tokens
    draft.model.decoder.embed_positions = source.decoder.embed_positions
    draft.model.decoder.layers = nn.ModuleList(copy.deepcopy(source.decoder.layers[i]) for i in layers)
    for index, layer in enumerate(draft.model.decoder.layers):  # cache slots follow the draft's own numbering
        layer.layer_idx = index
        for attention in (layer.self_attn, layer.encoder_attn):
            attention.layer_idx = index
    draft.model.decoder.layer_norm = copy.deepcopy(source.decoder.layer_norm)
    embedding = target.get_output_embeddings().weight  # [V, d]: the target's output projection (tied to the embeddings in Whisper)
    if vocab is None:
        draft.proj_out = target.proj_out
    else:
        head = nn.Linear(embedding.shape[1], len(vocab), bias=False)
        head.weight = nn.Parameter(embedding.detach()[torch.as_tensor(vocab.token_ids)].clone(), requires_grad=False)
        draft.proj_out = head
    draft.specplug_vocab = vocab
    draft.specplug_init_layers = layers
    draft.eval()
    return draft


def trainable_state(draft) -> dict[str, torch.Tensor]:
    """The draft's own weights: its decoder layers and final norm."""
    decoder = draft.model.decoder
    state = {f"layers.{k}": v for k, v in decoder.layers.state_dict().items()}
    state.update({f"layer_norm.{k}": v for k, v in decoder.layer_norm.state_dict().items()})
    return state


def save_draft_decoder(draft, target, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    from specplug.kit.heads import target_fingerprint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in trainable_state(draft).items()}, str(folder / DRAFT_FILE))
    vocab = draft.specplug_vocab
    meta = {
        "target_fingerprint": target_fingerprint(target),
        "init_layers": draft.specplug_init_layers,
        "vocab": None if vocab is None else [int(t) for t in vocab.token_ids],
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def load_draft_decoder(folder: str | Path, target):
    """The draft saved in ``folder``, bound to ``target`` (its encoder and embeddings shared)."""
    from safetensors.torch import load_file

    from specplug.kit.heads import target_fingerprint

    folder = Path(folder)
    if not (folder / META_FILE).exists() or not (folder / DRAFT_FILE).exists():
        raise DraftDecoderError(
            f"{folder} holds no draft decoder ({META_FILE} and {DRAFT_FILE}). "
            "Fix: train one with 'specplug speech distill --model whisper-tiny.en' (it prints the folder)."
        )
    meta = json.loads((folder / META_FILE).read_text())
    have = target_fingerprint(target)
    if meta.get("target_fingerprint") != have:
        raise DraftDecoderError(
            f"the draft decoder in {folder} was distilled for target {meta.get('target_fingerprint')}, not for this "
            f"target ({have}). Fix: run 'specplug speech distill' for this model."
        )
    vocab_size = int(target.get_output_embeddings().weight.shape[0])
    vocab = None if meta.get("vocab") is None else ReducedVocab(np.asarray(meta["vocab"]), vocab_size)
    draft = build_draft_decoder(target, meta["init_layers"], vocab)
    state = load_file(str(folder / DRAFT_FILE))
    decoder = draft.model.decoder
    decoder.layers.load_state_dict({k[len("layers."):]: v for k, v in state.items() if k.startswith("layers.")})
    decoder.layer_norm.load_state_dict({k[len("layer_norm."):]: v for k, v in state.items() if k.startswith("layer_norm.")})
    dtype = next(target.parameters()).dtype
    decoder.layers.to(dtype)
    decoder.layer_norm.to(dtype)
    draft.proj_out.to(dtype)
    draft.requires_grad_(False)
    draft.specplug_meta = meta
    return draft.eval()


class WhisperDraftCache(DraftCache):
    """:class:`~specplug.kit.drafting.DraftCache` over a draft decoder: its self-attention cache kept
    in step with the committed tokens, its cross-attention over the target's encoder output."""

    def __init__(self, draft) -> None:
        self.model = draft
        self.vocab = getattr(draft, "specplug_vocab", None)
        self.lm = Seq2SeqTarget(draft)
        self.tokens: list[int] = []
