"""The MLP speculator's training objective (arXiv 2404.19124), run by specplug's generic trainer.

As the paper's second stage trains it (fms-extras' ``train_speculator``): on the target's own
answers (``specplug train data`` is self-distilled), teacher-forced: at position ``t`` the first
stage reads the target's final state ``h_t`` and token ``t + 1``; stage ``i`` reads stage ``i - 1``'s
state and the *true* token ``t + 1 + i`` and is trained with cross-entropy on token ``t + 2 + i``;
the stages' losses are summed with equal weight. The paper's first stage (training on the base
model's pre-training text with the target's input embeddings) is left out: there is no such corpus
offline, and the self-distilled data is what its second stage uses.

Losses count only positions a draft starts from in decoding (the last prompt token and after) and
targets inside the sequence. Held-out top-1 accuracy at draft position ``p`` is stage ``p - 1``'s,
teacher-forced as in training (given the true earlier tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["MLPSpeculatorObjective"]


class MLPSpeculatorObjective:
    method = "mlp_speculator"

    def __init__(self, n_predict: int = 3) -> None:
        if n_predict < 1:
            raise ValueError(f"--n-predict must be at least 1, got {n_predict}")
        self.n_predict = n_predict
        self.positions = n_predict

    def settings(self) -> dict:
        return {"n_predict": self.n_predict}

    def metadata_extra(self) -> dict:
        return {"n_predict": self.n_predict}

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_mlp_speculator.speculator import MLPSpeculatorHead

        return MLPSpeculatorHead.for_target(target, n_predict=self.n_predict)

    def _stages(self, head, batch: Batch):
        """Yields ``(stage, logits [n, V], targets [n])`` over the positions with a target."""
        rows = target_mask(batch, 2)  # a stage-0 target: every later stage's rows are a subset
        if not rows.any():
            return
        state = head.first_state(batch.states[-1][rows])
        for i in range(self.n_predict):
            state = head.stage(i, state, ahead(batch.tokens, 1 + i)[rows])
            keep = target_mask(batch, 2 + i)[rows]
            if not keep.any():
                return
            yield i, head.head[i](state[keep]), ahead(batch.tokens, 2 + i)[rows][keep]

    def loss(self, head, batch: Batch, generator=None):
        total, parts = None, {}
        for i, logits, target in self._stages(head, batch):
            ce = F.cross_entropy(logits, target)
            total = ce if total is None else total + ce
            parts[f"ce{i + 1}"] = float(ce.detach())
        return total, parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for i, logits, target in self._stages(head, batch):
            loss += float(F.cross_entropy(logits, target))
            correct[i] += int((logits.argmax(-1) == target).sum())
            count[i] += len(target)
        return loss, correct, count
