"""Amphista's training objective (arXiv 2406.13170), run by specplug's generic trainer.

The target stays frozen (as in Medusa-1, which Amphista builds on); the fusion layer, the two staged
adaptation layers, the head MLPs, the position embedding and the Auto-embedding Block train together.
At every position ``t`` a draft can start from, the adaptation layers read the target's final states
of positions ``<= t`` with the tokens after them (teacher-forced, causal), and head ``k`` is trained with
cross-entropy on the token at ``t + 2 + k``, heads weighted ``0.8 ** k`` (Medusa's decay). Held-out
top-1 at draft position ``p`` is head ``p - 1``'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["AmphistaObjective"]

STEP_DECAY = 0.8


class AmphistaObjective:
    method = "amphista"

    def __init__(self, num_heads: int = 4) -> None:
        if num_heads < 1:
            raise ValueError(f"--num-heads {num_heads}: Amphista needs at least one drafting head")
        self.num_heads = int(num_heads)
        self.positions = self.num_heads

    def settings(self) -> dict:
        return {"num_heads": self.num_heads}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_amphista.heads import AmphistaHeads

        for param in target.parameters():
            param.requires_grad_(False)
        return AmphistaHeads.for_target(target, num_heads=self.num_heads)

    def _per_head(self, heads, batch: Batch):
        """Yields ``(k, logits [n, V], target tokens [n])``."""
        rows = target_mask(batch, 2)
        if not rows.any():
            return
        stage1, stage2 = heads.adapt_states(batch.states[-1], ahead(batch.tokens, 1), batch.positions)
        states = heads.head_states(stage1[rows], stage2[rows])  # [n, K, H]
        for k in range(self.num_heads):
            keep = target_mask(batch, 2 + k)[rows]
            if not keep.any():
                return
            yield k, heads.head_logits(states[keep, k]).float(), ahead(batch.tokens, 2 + k)[rows][keep]

    def loss(self, heads, batch: Batch, generator=None):
        total, parts = None, {}
        for k, logits, target in self._per_head(heads, batch):
            part = F.cross_entropy(logits, target)
            total = STEP_DECAY**k * part if total is None else total + STEP_DECAY**k * part
            parts[f"loss{k + 1}"] = float(part.detach())
        return total, parts

    @torch.no_grad()
    def evaluate(self, heads, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for k, logits, target in self._per_head(heads, batch):
            loss += STEP_DECAY**k * float(F.cross_entropy(logits, target))
            correct[k] += int((logits.argmax(-1) == target).sum())
            count[k] += len(target)
        return loss, correct, count
