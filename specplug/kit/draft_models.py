"""The draft model of an independent drafter, bound to its target (torch is imported only to load one).

sps, Ouroboros, PEARL, CS-Drafting, TriForce and the other drafters that run a second causal LM all
take their draft the same two ways: ``layers`` of the target itself (a weight-sharing view, the model
``specplug models derive TARGET --layers ...`` writes), or ``model``, a folder loaded beside the
target. Either way the draft's token ids must mean the target's tokens, so a loaded draft is refused
unless it scores the target's vocabulary with the same tokenizer (:func:`tokenizer_fingerprint`);
:class:`DraftModelError` names both vocabularies and the fix.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["DraftModelError", "bind_draft_model", "tokenizer_fingerprint"]


class DraftModelError(ValueError):
    """A draft model that cannot draft for this target; the message names both and the fix."""


def tokenizer_fingerprint(tokenizer) -> str:
    """``sha256:<hex>`` of a tokenizer's vocabulary (token -> id, sorted by id, added tokens included).

    Two tokenizers with the same fingerprint give every token the same id, which is what a draft
    model needs to share the target's ids."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
    return "sha256:" + hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()


def bind_draft_model(target, *, method: str, layers: str | None = None, model: str | None = None,
                     dtype: str | None = None) -> tuple[Any, dict]:
    """The draft model a drafter uses for ``target`` (a :class:`~specplug.protocols.TargetInfo`), and what
    it is (``info``: source, layers, tokenizer fingerprints).

    ``layers`` (e.g. ``"0-3"``): a view of the target's own decoder layers, sharing its weights (the same
    model ``specplug models derive TARGET --layers ...`` writes). Otherwise ``model`` (a folder, a model id
    specplug knows, or a hub id) is loaded on the target's device and dtype (``dtype`` overrides it) and
    refused unless it scores the target's vocabulary with the target's tokenizer."""
    if layers is not None:
        from specplug.models.derive import parse_layers

        if target.model is None:
            raise DraftModelError(
                f"{method} with 'layers' drafts with the target's own layers, but this engine does not share its "
                "model; write the draft folder with 'specplug models derive TARGET --layers ...' and pass it as 'model'")
        keep = parse_layers(layers, int(target.num_layers or target.model.config.num_hidden_layers))
        from specplug.kit.drafting import model_view

        return model_view(target.model, keep), {"source": "target layers", "layers": keep}
    if model is None:
        raise DraftModelError(f"{method} needs a draft: give 'model' (a folder, e.g. from 'specplug models derive') "
                              "or 'layers' of the target (e.g. '0-3')")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from specplug.models import resolve_model

    location = resolve_model(model)
    device, torch_dtype = "cpu", torch.float32
    if target.model is not None:
        param = next(target.model.parameters())
        device, torch_dtype = param.device, param.dtype
    if dtype is not None:
        torch_dtype = getattr(torch, dtype)
    try:
        draft_tokenizer = AutoTokenizer.from_pretrained(location)
    except Exception:  # a draft folder without tokenizer files: only the vocabulary size can be checked
        draft_tokenizer = None
    draft = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype)
    draft.to(device).eval()
    draft.requires_grad_(False)
    info = {"source": location, **_check_vocabulary(target, draft, draft_tokenizer, location)}
    return draft, info


def _check_vocabulary(target, draft, draft_tokenizer, location: str) -> dict:
    draft_vocab = int(draft.get_output_embeddings().weight.shape[0])
    draft_fp = tokenizer_fingerprint(draft_tokenizer) if draft_tokenizer is not None else None
    target_fp = tokenizer_fingerprint(target.tokenizer) if target.tokenizer is not None else None
    same_size = draft_vocab == target.vocab_size
    same_tokens = draft_fp is None or target_fp is None or draft_fp == target_fp
    if same_size and same_tokens:
        return {"draft_tokenizer": draft_fp, "target_tokenizer": target_fp}

    def describe(name, size, tok, fp):
        extra = f", tokenizer of {len(tok)} tokens, fingerprint {fp[:19]}" if tok is not None else ", no tokenizer"
        return f"{name}: vocabulary {size}{extra}"

    raise DraftModelError(
        "the draft model does not share the target's tokenizer, so its token ids mean other tokens: "
        f"{describe('draft ' + location, draft_vocab, draft_tokenizer, draft_fp)}; "
        f"{describe('target ' + (target.name_or_path or 'the target'), target.vocab_size, target.tokenizer, target_fp)}. "
        "Use a draft with the target's tokenizer, e.g. 'specplug models derive TARGET --layers 0-3'.")
