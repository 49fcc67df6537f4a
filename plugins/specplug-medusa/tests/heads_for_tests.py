"""Heads saved in vLLM's layout for the tests' tiny targets (random weights, through specplug.heads' own export)."""

from __future__ import annotations

from pathlib import Path


def save_random_head(method: str, model, folder: Path, seed: int = 0, draft_vocab: int | None = None) -> Path:
    """A randomly initialised ``method`` head for ``model`` saved in ``folder`` (config, safetensors, metadata)."""
    import numpy as np
    import torch

    from specplug.heads import Eagle3Head, EagleHead, HeadMetadata, MedusaHeads, target_summary

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if method == "eagle":
            head = EagleHead.for_target(model)
        elif method == "eagle3":
            vocab = int(model.get_output_embeddings().weight.shape[0])
            ids = None if draft_vocab is None else np.random.default_rng(seed).choice(vocab, size=draft_vocab, replace=False)
            head = Eagle3Head.for_target(model, draft_token_ids=ids)
        elif method == "medusa":
            head = MedusaHeads.for_target(model, num_heads=3)
            with torch.no_grad():  # Medusa starts as identity blocks: perturb them so the heads disagree
                for block in head.blocks:
                    for layer in block.layers:
                        layer.weight.normal_(0, 0.5)
        else:
            raise ValueError(method)
    finally:
        torch.random.set_rng_state(state)
    draft_vocab_size = int(getattr(head, "draft_vocab_size", model.get_output_embeddings().weight.shape[0]))
    meta = HeadMetadata(method=method, target=target_summary(model), hidden_state_layers=list(head.hidden_state_layers),
                        draft_vocab_size=draft_vocab_size)
    head.save_pretrained(folder, meta)
    return folder
