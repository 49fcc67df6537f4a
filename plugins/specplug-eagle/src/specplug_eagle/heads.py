"""The trained head behind a proposer: loading it for a target and running it (torch).

Heads are trained and saved by ``specplug train`` (modules :mod:`specplug_eagle.eagle_head` and
:mod:`specplug_eagle.eagle3_head`, saved by :mod:`specplug.kit.heads`), in vLLM's layouts; this
module loads one for the engine's target and gives the proposer three calls: :meth:`HeadRunner.run`
(entries through the head's decoder layer with its KV cache), :meth:`HeadRunner.logits` and
:meth:`HeadRunner.to_target` (EAGLE-3's reduced draft vocabulary back to target ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["HeadRunner", "default_head_dir", "load_runner", "meta_value"]


def meta_value(meta: Any, key: str, default: Any = None) -> Any:
    """``meta[key]`` or ``meta.key`` (the loader's metadata object), else ``default``."""
    if isinstance(meta, dict):
        return meta.get(key, default)
    return getattr(meta, key, default)


class HeadRunner:
    """A loaded head in eval mode, with the target's dtype and device."""

    def __init__(self, module, meta: Any, folder: Path) -> None:
        self.module = module.eval()
        self.meta = meta
        self.folder = folder
        param = next(module.parameters())
        self.dtype, self.device = param.dtype, param.device
        self.method = str(meta_value(meta, "method"))
        self.hidden_state_layers = tuple(int(x) for x in meta_value(meta, "hidden_state_layers", (-1,)))
        # EAGLE-3's reduced vocabulary: the target id of every draft index (vLLM's d2t offsets applied)
        token_ids = getattr(module, "token_ids", None)
        self.draft_to_target = None if token_ids is None else token_ids.detach().cpu().numpy().astype(np.int64)

    def new_cache(self):
        from transformers import DynamicCache

        return DynamicCache()

    @torch.inference_mode()
    def run(self, tokens: Sequence[int], features: torch.Tensor, positions: torch.Tensor, cache, mask: torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(list(tokens), dtype=torch.long, device=self.device)
        return self.module(ids, features.to(device=self.device, dtype=self.dtype), positions.to(self.device),
                           past_key_values=cache, attention_mask=mask)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.module.logits(hidden).float()

    def to_target(self, draft_ids: np.ndarray) -> np.ndarray:
        """Draft-vocabulary indices as target ids (identity without a reduced vocabulary)."""
        ids = np.asarray(draft_ids, dtype=np.int64)
        return ids if self.draft_to_target is None else self.draft_to_target[ids]

    def expand_probs(self, probs: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """Draft-vocabulary probabilities [..., N] as target-vocabulary ones [..., V]."""
        if self.draft_to_target is None:
            return probs
        out = probs.new_zeros(*probs.shape[:-1], vocab_size)
        out[..., torch.as_tensor(self.draft_to_target, device=probs.device)] = probs
        return out


def default_head_dir(method: str, target_model) -> Path:
    """The folder ``specplug train <method>`` writes for ``target_model``: ``<cache>/heads/<fingerprint>/<method>``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), method)


def load_runner(folder: str | Path, target_model) -> HeadRunner:
    """Load the head in ``folder`` for ``target_model`` (refused, with the reason, when it was trained
    for another model or is not a head)."""
    from specplug.kit.heads import load_head

    folder = Path(folder).expanduser()
    module, meta = load_head(folder, target_model)
    return HeadRunner(module, meta, folder)
