"""EESD's self-distillation objective, run by specplug's generic trainer (``specplug train eesd``).

The training data is the target's own greedy continuations (``specplug train data``), so the
cross-entropy of the early exit's next-token logits ``lm_head(norm(adapter(h_N[t])))`` against the
token the target produced at ``t + 1`` distils the full model into its first N layers plus the adapter
(the paper's self-distillation, with the target's tokens as hard labels). The target's norm and LM
head stay frozen and are not part of the exported head. Losses count positions a draft starts from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["EesdObjective"]


class EesdObjective:
    method = "eesd"
    positions = 1

    def __init__(self, exit_layer: int | None = None, adapter_layers: int = 1) -> None:
        self.exit_layer = exit_layer
        self.adapter_layers = adapter_layers
        self._norm = self._lm_head = None

    def settings(self) -> dict:
        return {"exit_layer": self.exit_layer, "adapter_layers": self.adapter_layers}

    def metadata_extra(self) -> dict:
        return {"exit_layer": self.exit_layer, "adapter_layers": self.adapter_layers}

    def layers(self, data_layers, cfg) -> list[int]:
        if self.exit_layer is None:  # half the target's layers, which the default data stores
            from transformers import AutoConfig

            from specplug.models import resolve_model
            from specplug_eesd.head import default_exit_layer

            self.exit_layer = default_exit_layer(int(AutoConfig.from_pretrained(resolve_model(cfg.model)).num_hidden_layers))
        if self.exit_layer not in data_layers:
            raise ValueError(f"the data folder stores hidden-state layers {data_layers}, not the exit layer "
                             f"{self.exit_layer}; rebuild it with 'specplug train data --layers {self.exit_layer},...'")
        return [self.exit_layer]

    def build(self, target, data, options):
        from specplug_eesd.head import EarlyExitHead

        head = EarlyExitHead.for_target(target, self.exit_layer, self.adapter_layers)
        self.exit_layer = head.exit_layer
        self._norm, self._lm_head = target.model.norm, target.get_output_embeddings()
        return head

    def _logits(self, head, batch: Batch):
        mask = target_mask(batch, 1)
        if not mask.any():
            return None, None
        states = batch.states[head.exit_layer][mask]
        return self._lm_head(self._norm(head(states))), ahead(batch.tokens, 1)[mask]

    def loss(self, head, batch: Batch, generator=None):
        logits, target = self._logits(head, batch)
        if logits is None:
            return None, {}
        ce = F.cross_entropy(logits.float(), target)
        return ce, {"ce": float(ce.detach())}

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        logits, target = self._logits(head, batch)
        if logits is None:
            return 0.0, [0], [0]
        loss = float(F.cross_entropy(logits.float(), target))
        return loss, [int((logits.argmax(-1) == target).sum())], [len(target)]
