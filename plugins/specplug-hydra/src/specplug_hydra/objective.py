"""Hydra's training objectives (arXiv 2402.05109), run by specplug's generic trainer.

Head ``k`` reads the target's final state at ``t`` and the true tokens ``t + 1 .. t + 1 + k``
(teacher forcing, as the paper trains) and is trained on the token at ``t + 2 + k``:

- ``teacher`` (default, Hydra++'s objective): cross-entropy against the *target's distribution* of
  that token (``softmax(lm_head(h_{t + 1 + k}))``, free here: the data stores the final states and
  the target's LM head is one matmul away), i.e. distillation from the base model;
- ``hard``: cross-entropy on the token itself (Hydra's original objective, Medusa-1's).

The heads' losses are weighted ``0.8 ** k`` (Medusa's decay, which Hydra's code keeps). Losses count
only positions a draft starts from in decoding and targets inside the sequence. Held-out top-1
accuracy at draft position ``p`` is head ``p - 1``'s against the true token (teacher-forced).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["HydraObjective"]

STEP_DECAY = 0.8


class HydraObjective:
    method = "hydra"

    def __init__(self, num_heads: int = 4, num_layers: int = 4, objective: str = "teacher") -> None:
        if objective not in ("teacher", "hard"):
            raise ValueError(f"--objective {objective!r}: use teacher (Hydra++) or hard")
        self.num_heads, self.num_layers, self.objective = num_heads, num_layers, objective
        self.positions = num_heads
        self._lm_head = None

    def settings(self) -> dict:
        return {"num_heads": self.num_heads, "num_layers": self.num_layers, "objective": self.objective}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_hydra.hydra_heads import HydraHeads

        self._lm_head = target.get_output_embeddings()
        for param in self._lm_head.parameters():
            param.requires_grad_(False)
        return HydraHeads.for_target(target, num_heads=self.num_heads, num_layers=self.num_layers)

    def _per_head(self, heads, batch: Batch):
        """Yields ``(k, logits [n, V], target tokens [n], teacher features [n, H])``."""
        feats = batch.states[-1]
        rows = target_mask(batch, 2)
        if not rows.any():
            return
        tokens = torch.stack([ahead(batch.tokens, 1 + j)[rows] for j in range(self.num_heads)], dim=-1)  # [n, K]
        hidden = feats[rows]
        for k in range(self.num_heads):
            keep = target_mask(batch, 2 + k)[rows]
            if not keep.any():
                return
            logits = heads.head_logits(k, hidden[keep], tokens[keep][:, : k + 1])
            yield k, logits, ahead(batch.tokens, 2 + k)[rows][keep], ahead(feats, 1 + k)[rows][keep]

    def _teacher(self, features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self._lm_head(features.to(self._lm_head.weight.dtype)).float(), dim=-1)

    def _head_loss(self, logits, target, features) -> torch.Tensor:
        if self.objective == "hard":
            return F.cross_entropy(logits, target)
        return -(self._teacher(features) * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()

    def loss(self, heads, batch: Batch, generator=None):
        total, parts = None, {}
        for k, logits, target, features in self._per_head(heads, batch):
            part = self._head_loss(logits, target, features)
            total = STEP_DECAY**k * part if total is None else total + STEP_DECAY**k * part
            parts[f"loss{k + 1}"] = float(part.detach())
        return total, parts

    @torch.no_grad()
    def evaluate(self, heads, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for k, logits, target, features in self._per_head(heads, batch):
            loss += STEP_DECAY**k * float(self._head_loss(logits, target, features))
            correct[k] += int((logits.argmax(-1) == target).sum())
            count[k] += len(target)
        return loss, correct, count
