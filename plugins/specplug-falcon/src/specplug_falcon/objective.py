"""FALCON's training objective, Coupled Sequential Glancing Distillation (arXiv 2412.12639), run by
specplug's generic trainer.

Each step (see :mod:`specplug_falcon.glancing` for the glancing rule):

1. inputs ``(f_p + noise, x[p + 1])`` at every position (uniform noise U(-0.1, 0.1) on the features,
   as EAGLE-style drafters train); a forward without gradient predicts the token ``x[p + k + 1]`` of
   every loss position; the misses give the Hamming distance;
2. glancing replaces ``floor(lambda * distance)`` inputs (whole-block prefixes) by the targets
   ``(f_{p+k}, x[p + k + 1])``;
3. the drafter runs again on the glanced inputs and is trained on every loss position with
   FALCON's distillation loss: ``v_weight * SmoothL1(feature, f_{p+k}) + p_weight * (0.9 *
   KL(target distribution || draft distribution) + 0.1 * CE(x[p + k + 1]))``, the target
   distribution being ``softmax(lm_head(f_{p+k}))`` (the target's own, one matmul from the stored
   features), weights 1.0 and 0.1 as in the authors' training script.

Loss positions: ``p`` such that the token ``x[p + k + 1]`` exists and is drafted in decoding (its
root lies in the response: ``root[p + k]``). Held-out top-1 at draft position ``j + 1`` is the
accuracy of the block's ``j``-th position (teacher-forced, no glancing): the ``k`` tokens one forward drafts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead

from specplug_falcon.glancing import glance_positions, glance_ratio

__all__ = ["FalconObjective"]

NOISE = 0.1
SOFT_SHARE = 0.9  # of the token loss: KL to the target's distribution; the rest is the hard token


class FalconObjective:
    method = "falcon"

    def __init__(self, block_size: int = 2, glancing: bool = True, glance_steps: int = 2000,
                 v_weight: float = 1.0, p_weight: float = 0.1) -> None:
        if block_size < 2:
            raise ValueError(f"--block-size {block_size}: FALCON drafts blocks of k >= 2 tokens per forward "
                             "(k = 1 is EAGLE; use `specplug train eagle`)")
        if glance_steps < 0:
            raise ValueError(f"--glance-steps {glance_steps}: give the number of steps lambda decays over (>= 0)")
        self.block_size, self.glancing, self.glance_steps = int(block_size), bool(glancing), int(glance_steps)
        self.v_weight, self.p_weight = float(v_weight), float(p_weight)
        self.positions = self.block_size
        self.steps_done = 0  # counts loss() calls: lambda's schedule (restarts with a resumed run)

    def settings(self) -> dict:
        return {"block_size": self.block_size, "glancing": self.glancing, "glance_steps": self.glance_steps,
                "v_weight": self.v_weight, "p_weight": self.p_weight}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_falcon.drafter import FalconDrafter

        for param in target.parameters():
            param.requires_grad_(False)
        return FalconDrafter.for_target(target, block_size=self.block_size)

    # -- pieces -----------------------------------------------------------------------------------
    def targets(self, batch: Batch):
        """``(inputs tokens, input features, target features, target tokens, loss mask)``, all ``[B, T(, H)]``."""
        k = self.block_size
        feats = batch.states[-1]
        mask = ahead(batch.root, k, False) & ahead(batch.valid, k + 1, False)
        return ahead(batch.tokens, 1), feats, ahead(feats, k), ahead(batch.tokens, k + 1), mask

    def _noisy(self, feats: torch.Tensor, generator) -> torch.Tensor:
        noise = (torch.rand(feats.shape, generator=generator) * 2 - 1).to(device=feats.device, dtype=feats.dtype)
        return feats + NOISE * noise

    def glanced_inputs(self, head, batch: Batch, generator=None, ratio: float | None = None):
        """The inputs of the trained forward: ``(tokens, features, reveal mask)`` after the glancing step."""
        tokens_in, feats, target_feats, target_tokens, mask = self.targets(batch)
        feats_in = self._noisy(feats, generator) if generator is not None else feats
        ratio = glance_ratio(self.steps_done, self.glance_steps) if ratio is None else ratio
        if not self.glancing or not mask.any():
            return tokens_in, feats_in, torch.zeros_like(mask)
        with torch.no_grad():
            out = head(tokens_in, feats_in, batch.positions)
            guess = head.logits(out[mask]).argmax(-1)
            wrong = torch.zeros_like(mask)
            wrong[mask] = guess != target_tokens[mask]
        reveal = glance_positions(wrong, mask, self.block_size, ratio, generator)
        tokens_in = torch.where(reveal, target_tokens, tokens_in)
        feats_in = torch.where(reveal[..., None], target_feats.to(feats_in.dtype), feats_in)
        return tokens_in, feats_in, reveal

    def _losses(self, head, out, target_feats, target_tokens, mask):
        pred = out[mask]
        logits = head.logits(pred).float()
        with torch.no_grad():
            teacher = torch.softmax(head.logits(target_feats[mask].to(pred.dtype)).float(), dim=-1)
        logp = torch.log_softmax(logits, dim=-1)
        kl = (teacher * (torch.log(teacher.clamp_min(1e-12)) - logp)).sum(-1).mean()
        hard = F.cross_entropy(logits, target_tokens[mask])
        v_loss = F.smooth_l1_loss(pred.float(), target_feats[mask].float())
        p_loss = SOFT_SHARE * kl + (1 - SOFT_SHARE) * hard
        return self.v_weight * v_loss + self.p_weight * p_loss, v_loss, p_loss, logits

    # -- the trainer's protocol ----------------------------------------------------------------------
    def loss(self, head, batch: Batch, generator=None):
        _, _, target_feats, target_tokens, mask = self.targets(batch)
        if not mask.any():
            return None, {}
        tokens_in, feats_in, reveal = self.glanced_inputs(head, batch, generator)
        self.steps_done += 1
        out = head(tokens_in, feats_in, batch.positions)
        total, v_loss, p_loss, _ = self._losses(head, out, target_feats, target_tokens, mask)
        return total, {"vloss": float(v_loss.detach()), "ploss": float(p_loss.detach()),
                       "glanced": float(reveal.sum()) / max(1, int(mask.sum()))}

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        tokens_in, feats, target_feats, target_tokens, mask = self.targets(batch)
        correct, count = [0] * self.positions, [0] * self.positions
        if not mask.any():
            return 0.0, correct, count
        out = head(tokens_in, feats, batch.positions)
        total, _, _, logits = self._losses(head, out, target_feats, target_tokens, mask)
        hits = (logits.argmax(-1) == target_tokens[mask]).cpu()
        offsets = (torch.arange(mask.shape[1]) % self.block_size).expand(mask.shape[0], -1)[mask.cpu()]
        for j in range(self.positions):
            correct[j] += int(hits[offsets == j].sum())
            count[j] += int((offsets == j).sum())
        return float(total), correct, count
