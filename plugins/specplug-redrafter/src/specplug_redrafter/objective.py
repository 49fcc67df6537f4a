"""ReDrafter's training objective (arXiv 2403.09919), run by specplug's generic trainer.

The paper trains the drafter by knowledge distillation from the target: at root ``t`` the drafter
reads the target's final state ``h_t``, the token at ``t + 1`` (the root) and then the true
continuation (teacher forcing), and step ``j`` is trained with cross-entropy against the target's
distribution of the token at ``t + 1 + j`` (``softmax(lm_head(h_{t + j}))``, from the stored final
states), over ``draft_length`` steps, equally weighted. Losses count only positions a draft starts
from in decoding and targets inside the sequence. Held-out top-1 accuracy at draft position ``p`` is
step ``p``'s against the true token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["ReDrafterObjective"]


class ReDrafterObjective:
    method = "redrafter"

    def __init__(self, draft_length: int = 4, num_layers: int = 2) -> None:
        if draft_length < 1:
            raise ValueError(f"--draft-length must be at least 1, got {draft_length}")
        self.draft_length, self.num_layers = draft_length, num_layers
        self.positions = draft_length
        self._lm_head = None

    def settings(self) -> dict:
        return {"draft_length": self.draft_length, "num_layers": self.num_layers}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_redrafter.drafter import ReDrafterHead

        self._lm_head = target.get_output_embeddings()
        for param in self._lm_head.parameters():
            param.requires_grad_(False)
        return ReDrafterHead.for_target(target, self.num_layers, self.draft_length)

    def _steps(self, head, batch: Batch):
        """Yields ``(j, logits [n, V], true tokens [n], teacher features [n, H])`` for steps ``j = 1 .. L``."""
        feats = batch.states[-1]
        rows = target_mask(batch, 2)
        if not rows.any():
            return
        hidden, state = feats[rows], None
        for j in range(1, self.draft_length + 1):
            state = head.step(state, ahead(batch.tokens, j)[rows])
            keep = target_mask(batch, 1 + j)[rows]
            if not keep.any():
                return
            yield j, head.logits(state[keep], hidden[keep]), ahead(batch.tokens, 1 + j)[rows][keep], ahead(feats, j)[rows][keep]

    def _loss(self, logits, features):
        with torch.no_grad():
            teacher = torch.softmax(self._lm_head(features).float(), dim=-1)
        return -(teacher * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()

    def loss(self, head, batch: Batch, generator=None):
        total, parts = None, {}
        for j, logits, _, features in self._steps(head, batch):
            part = self._loss(logits, features)
            total = part if total is None else total + part
            parts[f"kd{j}"] = float(part.detach())
        return total, parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for j, logits, tokens, features in self._steps(head, batch):
            loss += float(self._loss(logits, features))
            correct[j - 1] += int((logits.argmax(-1) == tokens).sum())
            count[j - 1] += len(tokens)
        return loss, correct, count
