"""HASS's training objective (Zhang et al., arXiv 2408.15766) for an EAGLE head, run by specplug's
generic trainer.

HASS keeps EAGLE's head (one decoder layer over the next token's embedding and a feature, the
target's embeddings and LM head shared) and EAGLE-2's drafting, and changes how the head is trained:

- **Harmonized context alignment**: the head is trained for ``align_steps`` steps. Step 0 is EAGLE's
  teacher-forced step (the target's features, plus EAGLE's uniform noise). At step ``j`` the feature
  the head reads for root ``t`` is *its own* output of step ``j - 1``, and its attention sees the
  target's features for positions ``<= t`` and its own step ``1 .. j`` entries of the same root:
  the context it has when it drafts its ``(j + 1)``-th token. Its targets at step ``j`` are the
  target's feature at ``t + 1 + j`` and the token at ``t + 2 + j``.
- **Harmonized objective distillation**: besides EAGLE's feature regression (smooth L1) and token
  cross-entropy (weight 0.1), each step adds a top-K distillation term: ``-sum_{x in topK(p)} p(x)
  log q(x)``, where ``p`` is the target's distribution of that token (``softmax(lm_head(h_{t+1+j}))``,
  from the stored final states) and ``K = topk`` (10), weight ``topk_weight`` (1.0). This trains the
  head on the tokens a tree actually drafts (its top-K), not only on the argmax.

The steps' losses are summed with equal weight. Losses count only positions a draft starts from in
decoding and targets inside the sequence. Held-out top-1 accuracy at draft position ``p`` is step
``p - 1``'s (the head's own earlier features, the true earlier tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["HassObjective", "alignment_mask"]

NOISE = 0.1
CE_WEIGHT = 0.1


def alignment_mask(T: int, step: int, dtype=torch.float32) -> torch.Tensor:
    """Additive mask ``[1, 1, T, (step + 1) T]`` of alignment step ``step``: causal over the step-0
    (target-feature) keys, then for each later step's keys only the key of the same root."""
    allow = torch.zeros(T, (step + 1) * T, dtype=torch.bool)
    allow[:, :T] = torch.ones(T, T, dtype=torch.bool).tril()
    eye = torch.eye(T, dtype=torch.bool)
    for i in range(1, step + 1):
        allow[:, i * T : (i + 1) * T] = eye
    return torch.zeros(allow.shape, dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)[None, None]


class HassObjective:
    method = "hass"

    def __init__(self, align_steps: int = 3, topk: int = 10, topk_weight: float = 1.0, eval_positions: int = 5) -> None:
        if align_steps < 1 or topk < 1:
            raise ValueError(f"--align-steps and --topk must be at least 1, got {align_steps}, {topk}")
        self.align_steps, self.topk, self.topk_weight = align_steps, topk, topk_weight
        self.positions = max(eval_positions, align_steps)
        self._target = None

    def settings(self) -> dict:
        return {"align_steps": self.align_steps, "topk": self.topk, "topk_weight": self.topk_weight}

    def metadata_extra(self) -> dict:
        return self.settings()

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_hass.head import hass_head_class

        self._target = target
        for param in target.get_output_embeddings().parameters():
            param.requires_grad_(False)
        return hass_head_class().for_target(target)

    def export(self, head, out, metadata, cfg) -> None:
        """The same weights as an EAGLE head folder in ``out/eagle`` (vLLM's Llama-EAGLE layout, metadata
        method ``eagle``): what EAGLE-2's drafting and vLLM's native ``eagle`` method load."""
        from specplug_hass.head import save_as_eagle

        save_as_eagle(head, self._target, out / "eagle", metadata)

    def _unroll(self, head, batch: Batch, steps: int, generator=None):
        """Yields ``(step, outputs [B, T, H])``; step 0 reads the (noisy) target features."""
        from transformers import DynamicCache

        cache = DynamicCache()
        features = batch.states[-1]
        if generator is not None:
            features = features + (torch.rand(features.shape, generator=generator) * 2 - 1) * NOISE
        T = batch.tokens.shape[1]
        for step in range(steps):
            out = head(ahead(batch.tokens, 1 + step), features, batch.positions + step, cache,
                       alignment_mask(T, step, features.dtype))
            yield step, out
            features = out

    def _teacher(self, feats: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self._target.get_output_embeddings()(feats).float(), dim=-1)

    def _step_loss(self, head, out, batch: Batch, step: int):
        mask = target_mask(batch, 2 + step)
        if not mask.any():
            return None, {}
        target_feats = ahead(batch.states[-1], 1 + step)[mask]
        logits = head.logits(out[mask]).float()
        reg = F.smooth_l1_loss(out[mask], target_feats)
        ce = F.cross_entropy(logits, ahead(batch.tokens, 2 + step)[mask])
        p = self._teacher(target_feats)
        top_p, top_i = p.topk(self.topk, dim=-1)
        topk = -(top_p * torch.log_softmax(logits, dim=-1).gather(-1, top_i)).sum(-1).mean()
        loss = reg + CE_WEIGHT * ce + self.topk_weight * topk
        return loss, {f"reg{step + 1}": float(reg.detach()), f"ce{step + 1}": float(ce.detach()),
                      f"topk{step + 1}": float(topk.detach())}

    def loss(self, head, batch: Batch, generator=None):
        total, parts = None, {}
        for step, out in self._unroll(head, batch, self.align_steps, generator if generator is not None else torch.Generator()):
            loss, part = self._step_loss(head, out, batch, step)
            if loss is not None:
                total = loss if total is None else total + loss
                parts.update(part)
        return total, parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for step, out in self._unroll(head, batch, self.positions):
            mask = target_mask(batch, 2 + step)
            if not mask.any():
                continue
            if step < self.align_steps:
                step_loss, _ = self._step_loss(head, out, batch, step)
                loss += float(step_loss)
            tokens = ahead(batch.tokens, 2 + step)[mask]
            correct[step] += int((head.logits(out[mask]).argmax(-1) == tokens).sum())
            count[step] += len(tokens)
        return loss, correct, count
