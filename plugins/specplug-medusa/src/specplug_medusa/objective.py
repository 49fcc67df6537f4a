"""Medusa-1's training objective (arXiv 2401.10774), run by specplug's generic trainer.

Head ``k`` reads the target's final state at ``t`` and is trained with cross-entropy on token
``t + 2 + k`` (``targets="soft"``, the default: against the target's own distribution for that token,
its frozen LM head on the stored final state at ``t + 1 + k``, Medusa-2's self-distillation; ``"hard"``:
the token itself); the heads' losses are weighted ``0.8 ** k`` as in Medusa. Losses count only positions
a draft starts from in decoding (the last prompt token and after) and targets inside the sequence.
Held-out top-1 accuracy at draft position ``p`` (1-based) is the share of positions where head
``p - 1``'s top token is the target's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["MedusaObjective"]

STEP_DECAY = 0.8


class MedusaObjective:
    method = "medusa"

    def __init__(self, num_heads: int = 5, targets: str = "soft") -> None:
        if targets not in ("soft", "hard"):
            raise ValueError(f"--targets {targets!r}: use soft or hard")
        self.num_heads = num_heads
        self.positions = num_heads
        self.targets = targets
        self._target_head = None

    def settings(self) -> dict:
        return {"num_heads": self.num_heads, "targets": self.targets}

    def metadata_extra(self) -> dict:
        return {"num_heads": self.num_heads}

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_medusa.medusa_heads import MedusaHeads

        self._target_head = target.get_output_embeddings().weight.detach().float().clone()
        return MedusaHeads.for_target(target, num_heads=self.num_heads)

    def _per_head(self, head, batch: Batch):
        feats = batch.states[-1]
        for k in range(self.num_heads):
            mask = target_mask(batch, k + 2)
            if not mask.any():
                continue
            logits = head.lm_heads[k](head.blocks[k](feats[mask]))
            yield k, logits, ahead(batch.tokens, k + 2)[mask], (lambda k=k, mask=mask: ahead(feats, k + 1)[mask])

    def loss(self, head, batch: Batch, generator=None):
        total, parts = 0.0, {}
        for k, logits, target, next_states in self._per_head(head, batch):
            if self.targets == "soft":
                # Medusa-2's self-distillation: the target's own distribution for token t + 2 + k
                with torch.no_grad():
                    if self._target_head.device != logits.device:  # moved once (the GPU route)
                        self._target_head = self._target_head.to(logits.device)
                    soft = torch.softmax(next_states().float() @ self._target_head.T, dim=-1)
                ce = -(soft * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
            else:
                ce = F.cross_entropy(logits, target)
            total = total + STEP_DECAY**k * ce
            parts[f"ce{k + 1}"] = float(ce.detach())
        return total, parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for k, logits, target, _ in self._per_head(head, batch):
            loss += STEP_DECAY**k * float(F.cross_entropy(logits, target, reduction="sum")) / max(1, len(target))
            correct[k] += int((logits.argmax(-1) == target).sum())
            count[k] += len(target)
        return loss, correct, count
