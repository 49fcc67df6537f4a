"""The EAGLE and EAGLE-3 heads' training objectives, as their papers train them, on the frozen
target (run by specplug's generic trainer, :mod:`specplug.train.trainer`).

- **EAGLE** (arXiv 2401.15077): one step, teacher-forced: from (embedding of ``t + 1``, the target's
  feature at ``t`` plus uniform noise U(-0.1, 0.1)) predict the feature at ``t + 1`` (smooth L1)
  and, through the frozen LM head, token ``t + 2`` (cross-entropy, weight 0.1), EAGLE's loss.
- **EAGLE-3** (arXiv 2503.01840): *training-time test*: the head is unrolled ``ttt_steps`` times on its
  own outputs (step ``j`` at root ``t``: token ``t + 1 + j``, its step ``j - 1`` output, position
  ``t + j``; it attends to the step-0 keys of positions ``<= t`` and to its own keys of steps
  ``1..j`` at the same root, which is what it sees when vLLM drafts a chain), cross-entropy on token
  ``t + 2 + j`` over the reduced draft vocabulary, step losses weighted ``0.8 ** j``; no feature
  regression.

Losses count only positions a draft starts from in decoding (the last prompt token and after) and
targets inside the sequence. Held-out top-1 accuracy at draft position ``p`` (1-based) is the
share of positions where the ``p``-th drafted token is the target's, given the true earlier tokens
and the head's own earlier features, as in drafting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specplug.train.dataset import Batch
from specplug.train.shift import ahead, target_mask

__all__ = ["Eagle3Objective", "EagleObjective", "ttt_mask"]

STEP_DECAY = 0.8


def ttt_mask(T: int, step: int, dtype=torch.float32) -> torch.Tensor:
    """Additive mask ``[1, 1, T, (step + 1) T]`` for unroll step ``step``: causal over the step-0 keys,
    then, for each later step's keys, only the key of the same root (a diagonal)."""
    allow = torch.zeros(T, (step + 1) * T, dtype=torch.bool)
    allow[:, :T] = torch.ones(T, T, dtype=torch.bool).tril()
    eye = torch.eye(T, dtype=torch.bool)
    for i in range(1, step + 1):
        allow[:, i * T : (i + 1) * T] = eye
    return torch.zeros(allow.shape, dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)[None, None]


def _unroll(head, batch: Batch, first_features: torch.Tensor, steps: int):
    """Yields ``(step, outputs [B, T, H])`` for ``steps`` unroll steps (step 0 = plain teacher forcing)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    features = first_features
    T = batch.tokens.shape[1]
    for step in range(steps):
        mask = ttt_mask(T, step, features.dtype)
        out = head(ahead(batch.tokens, 1 + step), features, batch.positions + step, cache, mask)
        yield step, out
        features = out


class EagleObjective:
    method = "eagle"
    noise = 0.1
    ce_weight = 0.1

    def __init__(self, eval_positions: int = 5) -> None:
        self.positions = eval_positions

    def settings(self) -> dict:
        return {}

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_eagle.eagle_head import EagleHead

        return EagleHead.for_target(target)

    def loss(self, head, batch: Batch, generator=None):
        feats = batch.states[-1]
        noisy = feats + (torch.rand(feats.shape, generator=generator) * 2 - 1) * self.noise
        out = head(ahead(batch.tokens, 1), noisy, batch.positions)
        mask = target_mask(batch, 2)
        if not mask.any():
            return None, {}
        reg = F.smooth_l1_loss(out[mask], ahead(feats, 1)[mask])
        ce = F.cross_entropy(head.logits(out[mask]), ahead(batch.tokens, 2)[mask])
        return reg + self.ce_weight * ce, {"reg": float(reg.detach()), "ce": float(ce.detach())}

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        feats = batch.states[-1]
        for step, out in _unroll(head, batch, feats, self.positions):
            mask = target_mask(batch, 2 + step)
            if not mask.any():
                continue
            target = ahead(batch.tokens, 2 + step)[mask]
            logits = head.logits(out[mask])
            if step == 0:
                loss = float(F.smooth_l1_loss(out[mask], ahead(feats, 1)[mask])) + self.ce_weight * float(F.cross_entropy(logits, target))
            correct[step] += int((logits.argmax(-1) == target).sum())
            count[step] += len(target)
        return loss, correct, count


class Eagle3Objective:
    method = "eagle3"

    def __init__(self, ttt_steps: int = 4, draft_vocab: int = 8192, eval_positions: int = 5, aux_layers=None) -> None:
        self.ttt_steps = ttt_steps
        self.draft_vocab = draft_vocab
        self.positions = max(eval_positions, ttt_steps)
        self.aux_layers = list(aux_layers) if aux_layers else None
        self._index = None  # target id -> draft index (-1: not in the draft vocabulary)

    def settings(self) -> dict:
        return {"ttt_steps": self.ttt_steps, "draft_vocab": self.draft_vocab}

    def export(self, head, out, metadata, cfg) -> None:
        """The same head in the vllm-project/speculators format, in ``out/speculators``."""
        from specplug.models import resolve_model

        head.save_speculators(out / "speculators", metadata, verifier=resolve_model(cfg.model))

    def layers(self, data_layers, options) -> list[int]:
        if self.aux_layers is None:
            aux = [layer for layer in data_layers if layer != -1]
            if len(aux) != 3:
                raise ValueError(f"EAGLE-3 fuses three layers; the data has {aux}: pass --layers LOW,MID,HIGH")
            self.aux_layers = aux
        return self.aux_layers

    def build(self, target, data, options):
        from specplug.kit.drafting import ReducedVocab
        from specplug_eagle.eagle3_head import Eagle3Head

        vocab_size = int(target.get_output_embeddings().weight.shape[0])
        eos = getattr(target.config, "eos_token_id", None)
        always = [eos] if isinstance(eos, int) else list(eos or [])
        vocab = ReducedVocab.most_frequent(data.response_tokens(data.train), self.draft_vocab, vocab_size, always=always)
        return Eagle3Head.for_target(target, draft_token_ids=vocab.token_ids, aux_layers=self.aux_layers)

    def _draft_index(self, head) -> torch.Tensor:
        if self._index is None or self._index.numel() != head.t2d.numel():
            index = torch.full((head.t2d.numel(),), -1, dtype=torch.long)
            index[head.token_ids.cpu()] = torch.arange(head.draft_vocab_size)
            self._index = index
        return self._index

    def _fused_input(self, batch: Batch) -> torch.Tensor:
        return torch.cat([batch.states[layer] for layer in self.aux_layers], dim=-1)

    def loss(self, head, batch: Batch, generator=None):
        index = self._draft_index(head)
        total, parts, any_target = 0.0, {}, False
        for step, out in _unroll(head, batch, self._fused_input(batch), self.ttt_steps):
            mask = target_mask(batch, 2 + step)
            target = index[ahead(batch.tokens, 2 + step)]
            mask = mask & (target >= 0)
            if not mask.any():
                continue
            any_target = True
            ce = F.cross_entropy(head.logits(out[mask]), target[mask])
            total = total + STEP_DECAY**step * ce
            parts[f"ce{step + 1}"] = float(ce.detach())
        return (total if any_target else None), parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        index = self._draft_index(head)
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for step, out in _unroll(head, batch, self._fused_input(batch), self.positions):
            mask = target_mask(batch, 2 + step)
            if not mask.any():
                continue
            tokens = ahead(batch.tokens, 2 + step)[mask]
            logits = head.logits(out[mask])
            drafted = head.to_target(logits.argmax(-1))
            if step < self.ttt_steps:
                target = index[tokens]
                keep = target >= 0
                if keep.any():
                    loss += STEP_DECAY**step * float(F.cross_entropy(logits[keep], target[keep]))
            correct[step] += int((drafted == tokens).sum())
            count[step] += len(tokens)
        return loss, correct, count
