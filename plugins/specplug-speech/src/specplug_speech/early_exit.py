"""A trained early exit for a Whisper target: its first decoder layers plus a small adapter draft for it.

Kangaroo (Liu et al., arXiv 2404.18911) drafts with a *shallow sub-network* of the target (its first
``l`` layers, weights shared, nothing copied) followed by a small trained **adapter** (one multi-head
self-attention block between two normalisation layers) and the target's own LM head; the adapter is
the only thing trained, so the draft costs the target ``l`` layers plus the adapter per token. Its
*second* early exit stops drafting as soon as the draft's top-1 probability falls below a threshold.

Here, for Whisper's decoder:

- :class:`ExitAdapter`: ``LN_in -> causal multi-head self-attention (residual) -> LN_out``, then the
  target's tied output projection restricted to a reduced vocabulary
  (:class:`~specplug.kit.drafting.ReducedVocab`; the target verifies over all 51,864 ids, so output
  stays lossless). ``LN_out`` starts as the target's final norm and the attention's output
  projection starts at zero, so the untrained exit *is* plain early exit (the target's final norm and
  projection on layer ``l``'s state): training can only be measured against that.
- :func:`build_early_exit_draft`: a ``WhisperForConditionalGeneration``-shaped draft whose encoder,
  embeddings and first ``l`` decoder layers **are** the target's modules (the same objects) and whose
  final norm is the adapter, so the drafter reuses :class:`~specplug.kit.whisper_draft.WhisperDraftCache`
  (its own self-attention cache over the shared layers, cross-attention over the target's encoder
  output).
- :class:`EarlyExitDraftCache`: keeps the adapter's own key/value cache in step with the draft's.

On disk: ``exit.safetensors`` (the adapter) and ``draft.json`` (``"kind": "early_exit"``, the exit
layer, the target's fingerprint, the vocabulary, training figures).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from specplug.kit.drafting import ReducedVocab
from specplug.kit.whisper_draft import DraftDecoderError, WhisperDraftCache

__all__ = ["EarlyExitDraftCache", "ExitAdapter", "build_early_exit_draft", "default_exit_dir", "load_early_exit_draft",
           "save_early_exit_draft"]

EXIT_FILE = "exit.safetensors"
META_FILE = "draft.json"
KIND = "early_exit"


class ExitAdapter(nn.Module):
    """Kangaroo's adapter: ``LN_out(h + Attention(LN_in(h)))`` with causal self-attention over the request's positions.

    At inference the keys and values of earlier positions come from :attr:`kv` (set by
    :class:`EarlyExitDraftCache`, which rolls it back with the draft's cache); in training
    (:meth:`forward_sequence`) a whole padded batch of sequences attends causally at once.
    """

    def __init__(self, d_model: int, heads: int, final_norm: nn.LayerNorm) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, d_model // heads
        self.norm_in = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        nn.init.zeros_(self.out.weight)  # untrained: the residual passes h unchanged
        nn.init.zeros_(self.out.bias)
        self.norm_out = nn.LayerNorm(d_model)
        self.norm_out.load_state_dict(final_norm.state_dict())
        self.kv: list[torch.Tensor] | None = None  # [keys, values] [1, heads, past, head_dim] of the current request

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [B, heads, T, head_dim]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def _project(self, h: torch.Tensor):
        q, k, v = self.qkv(self.norm_in(h)).chunk(3, dim=-1)
        return self._split(q), self._split(k), self._split(v)

    def _merge(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        attended = attended.transpose(1, 2).reshape(h.shape)
        return self.norm_out(h + self.out(attended))

    def forward_sequence(self, h: torch.Tensor) -> torch.Tensor:
        """Training: ``h`` [B, T, d] (layer ``l``'s states of whole sequences, right-padded) -> [B, T, d]."""
        q, k, v = self._project(h)
        return self._merge(h, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Inference: ``h`` [1, n, d], the states of the ``n`` new positions; appends their keys/values to :attr:`kv`."""
        if self.kv is None:
            raise RuntimeError("the exit adapter has no request cache: draft through EarlyExitDraftCache")
        q, k, v = self._project(h)
        keys, values = (k, v) if self.kv[0] is None else (torch.cat([self.kv[0], k], 2), torch.cat([self.kv[1], v], 2))
        self.kv[0], self.kv[1] = keys, values
        n, total = q.shape[2], keys.shape[2]
        mask = None
        if n > 1:  # new position i sees every earlier position and new positions 0..i
            mask = torch.ones(n, total, dtype=torch.bool).tril(total - n)
        return self._merge(h, torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask))


def default_exit_dir(target_model, exit_layer: int) -> Path:
    """``$SPECPLUG_CACHE/drafts/whisper-<fingerprint>-exit<l>``: where ``specplug speech train-exit`` writes."""
    from specplug.kit.heads import target_fingerprint
    from specplug.models import cache_dir

    return cache_dir() / "drafts" / f"whisper-{target_fingerprint(target_model)}-exit{exit_layer}"


def build_early_exit_draft(target, exit_layer: int, vocab: ReducedVocab | None = None, adapter: ExitAdapter | None = None):
    """The target's first ``exit_layer`` decoder layers (shared modules) + ``adapter`` (new when ``None``) + reduced head."""
    import copy

    from transformers import WhisperForConditionalGeneration

    total = int(target.config.decoder_layers)
    if not 1 <= int(exit_layer) < total:
        raise ValueError(f"exit layer {exit_layer} must be 1..{total - 1}: the draft runs that many of the target's {total} decoder layers")
    exit_layer = int(exit_layer)
    config = copy.deepcopy(target.config)
    config.decoder_layers = exit_layer
    with torch.device("meta"):
        draft = WhisperForConditionalGeneration(config)
    source = target.model
    draft.model.encoder = source.encoder  # shared: encoder_states() finds the target's output
    draft.model.decoder.embed_tokens = source.decoder.embed_tokens
    draft.model.decoder.embed_positions = source.decoder.embed_positions
    draft.model.decoder.layers = nn.ModuleList(source.decoder.layers[:exit_layer])  # the same layer objects, cache slots 0..l-1
    if adapter is None:
        dtype = next(target.parameters()).dtype
        adapter = ExitAdapter(config.d_model, config.decoder_attention_heads, source.decoder.layer_norm).to(dtype)
    draft.model.decoder.layer_norm = adapter
    weight = target.get_output_embeddings().weight  # [V, d], tied to the token embeddings in Whisper
    draft.proj_out = target.proj_out if vocab is None else vocab.head(weight.detach())
    draft.specplug_vocab = vocab
    draft.specplug_exit_layer = exit_layer
    draft.specplug_adapter = adapter
    draft.requires_grad_(False)
    return draft.eval()


def save_early_exit_draft(draft, target, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    from specplug.kit.heads import target_fingerprint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in draft.specplug_adapter.state_dict().items()}, str(folder / EXIT_FILE))
    vocab = draft.specplug_vocab
    meta = {"kind": KIND, "target_fingerprint": target_fingerprint(target), "exit_layer": draft.specplug_exit_layer,
            "vocab": None if vocab is None else [int(t) for t in vocab.token_ids], **(extra or {})}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def load_early_exit_draft(folder: str | Path, target):
    """The early-exit draft saved in ``folder``, bound to ``target``; refuses other folders with the fix."""
    from safetensors.torch import load_file

    from specplug.kit.heads import target_fingerprint

    folder = Path(folder)
    if not (folder / META_FILE).exists() or not (folder / EXIT_FILE).exists():
        raise DraftDecoderError(f"{folder} holds no trained early exit ({META_FILE} and {EXIT_FILE}). "
                                "Fix: train one with 'specplug speech train-exit --model whisper-tiny.en' (it prints the folder).")
    meta = json.loads((folder / META_FILE).read_text())
    if meta.get("kind") != KIND:
        raise DraftDecoderError(f"{folder} holds a {meta.get('kind', 'distilled decoder')!r} draft, not an early exit. "
                                "Fix: give the folder 'specplug speech train-exit' printed.")
    have = target_fingerprint(target)
    if meta.get("target_fingerprint") != have:
        raise DraftDecoderError(f"the early exit in {folder} was trained for target {meta.get('target_fingerprint')}, not for this "
                                f"target ({have}). Fix: run 'specplug speech train-exit' for this model.")
    vocab_size = int(target.get_output_embeddings().weight.shape[0])
    vocab = None if meta.get("vocab") is None else ReducedVocab(np.asarray(meta["vocab"]), vocab_size)
    draft = build_early_exit_draft(target, meta["exit_layer"], vocab)
    draft.specplug_adapter.load_state_dict(load_file(str(folder / EXIT_FILE)))
    draft.specplug_adapter.to(next(target.parameters()).dtype)
    draft.specplug_meta = meta
    return draft


class EarlyExitDraftCache(WhisperDraftCache):
    """A :class:`WhisperDraftCache` whose adapter keeps its own keys/values, cut back with the draft's cache."""

    def __init__(self, draft) -> None:
        super().__init__(draft)
        self.adapter: ExitAdapter = draft.specplug_adapter
        self.kv: list[torch.Tensor | None] = [None, None]

    def reset(self) -> None:
        super().reset()
        self.kv = [None, None]

    def feed(self, tokens: Sequence[int]) -> torch.Tensor:
        keep = len(self.tokens)  # sync has rolled the decoder cache back to this many positions
        if self.kv[0] is not None and self.kv[0].shape[2] > keep:
            self.kv = [self.kv[0][:, :, :keep], self.kv[1][:, :, :keep]]
        self.adapter.kv = self.kv
        try:
            return super().feed(tokens)
        finally:
            self.adapter.kv = None
