"""SpecDec++'s training objective (``specplug train specdec_pp``), run by specplug's generic trainer.

For every position ``t`` a draft starts from, the (frozen) draft model reads the sequence and proposes
its token for ``t + 1``; the label says whether the target rejects it. At temperature 0, the paper's
greedy setting, the target rejects exactly when its argmax differs from the draft's. The target's
argmax comes from its final hidden state, which ``specplug train data`` stores (layer -1), through its
LM head. The head is trained with the paper's weighted binary cross-entropy (``reject_weight`` on the
rejected class, which is the rarer one for a good draft).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import target_mask

__all__ = ["SpecDecPPObjective"]


class SpecDecPPObjective:
    method = "specdec_pp"
    positions = 1

    def __init__(self, draft_layers: list[int] | None = None, depth: int = 2, reject_weight: float = 1.0) -> None:
        if reject_weight <= 0:
            raise ValueError(f"reject_weight must be > 0, got {reject_weight}")
        self.draft_layers, self.depth, self.reject_weight = draft_layers, depth, reject_weight
        self._draft = self._lm_head = None

    def settings(self) -> dict:
        return {"draft_layers": self.draft_layers, "depth": self.depth, "reject_weight": self.reject_weight}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, cfg) -> list[int]:
        if -1 not in data_layers:
            raise ValueError(f"the data folder stores layers {data_layers} but not -1 (the target's final state); "
                             "rebuild it with 'specplug train data' (its default stores -1)")
        return [-1]

    def build(self, target, data, cfg):
        from specplug.kit.drafting import model_view

        from specplug_specdec_pp.head import AcceptanceHead

        head = AcceptanceHead.for_target(target, self.draft_layers, self.depth)
        self.draft_layers = head.draft_layers
        self._draft = model_view(target, head.draft_layers).eval()
        self._draft.requires_grad_(False)
        self._lm_head = target.get_output_embeddings()
        return head

    def _examples(self, batch: Batch):
        """(draft states [N, H], rejected [N] float) at the positions a draft starts from."""
        mask = target_mask(batch, 1)
        if not mask.any():
            return None, None
        with torch.no_grad():
            out = self._draft(input_ids=batch.tokens, attention_mask=batch.valid.long(), position_ids=batch.positions,
                              output_hidden_states=True)
            draft_next = out.logits[mask].argmax(-1)
            target_next = self._lm_head(batch.states[-1][mask]).argmax(-1)
            states = out.hidden_states[-1][mask].detach()
        return states, (draft_next != target_next).float()

    def loss(self, head, batch: Batch, generator=None):
        states, rejected = self._examples(batch)
        if states is None:
            return None, {}
        logits = head(states).float()
        weight = torch.where(rejected > 0, torch.full_like(rejected, self.reject_weight), torch.ones_like(rejected))
        bce = F.binary_cross_entropy_with_logits(logits, rejected, weight=weight)
        return bce, {"bce": float(bce.detach()), "rejected": float(rejected.mean())}

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        states, rejected = self._examples(batch)
        if states is None:
            return 0.0, [0], [0]
        logits = head(states).float()
        loss = float(F.binary_cross_entropy_with_logits(logits, rejected))
        return loss, [int(((logits > 0).float() == rejected).sum())], [len(rejected)]
