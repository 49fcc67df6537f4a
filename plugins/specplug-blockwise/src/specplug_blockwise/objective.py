"""Blockwise parallel decoding's training objective (arXiv 1811.03115), run by specplug's generic trainer.

Head ``p_j`` (``j = 2 .. k``) reads the frozen target's final state at ``t`` and is trained with
cross-entropy on the token at ``t + j``; the paper averages the heads' losses (``p_1``, the target,
is frozen and not trained). The paper trains on sequence-level distillation data from the base
model, which is what ``specplug train data`` makes (the target's own greedy answers).

Losses count only positions a draft starts from in decoding (the last prompt token and after) and
targets inside the sequence. Held-out top-1 accuracy at draft position ``p`` is ``p_{p + 1}``'s (the
first drafted token is the one after the root, two places after the state's position).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["BlockwiseObjective"]


class BlockwiseObjective:
    method = "blockwise"

    def __init__(self, block_size: int = 4, ffn_mult: int = 4) -> None:
        if block_size < 2:
            raise ValueError(f"--block-size must be at least 2, got {block_size}")
        self.block_size, self.ffn_mult = block_size, ffn_mult
        self.positions = block_size - 1

    def settings(self) -> dict:
        return {"block_size": self.block_size, "ffn_mult": self.ffn_mult}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_blockwise.heads import BlockwiseHeads

        for param in target.get_output_embeddings().parameters():
            param.requires_grad_(False)
        return BlockwiseHeads.for_target(target, self.block_size, self.ffn_mult)

    def per_offset(self, heads, batch: Batch):
        """Yields ``(j, logits [n, V], targets [n])`` for offsets ``j = 2 .. k``: the token ``j`` ahead."""
        feats = batch.states[-1]
        for j in range(2, self.block_size + 1):
            mask = target_mask(batch, j)
            if mask.any():
                yield j, heads.offset_logits(j, feats[mask]), ahead(batch.tokens, j)[mask]

    def loss(self, heads, batch: Batch, generator=None):
        losses, parts = [], {}
        for j, logits, target in self.per_offset(heads, batch):
            losses.append(F.cross_entropy(logits, target))
            parts[f"ce{j}"] = float(losses[-1].detach())
        return (torch.stack(losses).mean() if losses else None), parts

    @torch.no_grad()
    def evaluate(self, heads, batch: Batch):
        loss, correct, count = [], [0] * self.positions, [0] * self.positions
        for j, logits, target in self.per_offset(heads, batch):
            loss.append(float(F.cross_entropy(logits, target)))
            correct[j - 2] += int((logits.argmax(-1) == target).sum())
            count[j - 2] += len(target)
        return sum(loss) / max(1, len(loss)), correct, count
