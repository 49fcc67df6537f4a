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

__all__ = ["Eagle3Objective", "EagleObjective", "rooted_unroll", "ttt_mask"]

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


def rooted_unroll(head, batch: Batch, first_features: torch.Tensor, steps: int):
    """The training-time test without compute on positions that carry no loss.

    Step 0 runs over every position (its keys are what later steps attend to). Steps ``j >= 1`` run
    only at the roots whose step-1 target exists (``target_mask(batch, 3)``), gathered per row and
    padded to the longest row: query ``m`` of row ``b`` (sequence position ``idx[b, m]``) attends to the
    step-0 keys up to ``idx[b, m]`` and to its own keys of steps ``1..j``, exactly what :func:`_unroll`
    gives it (the equivalence is tested). Yields ``(step, outputs, pick)``: ``pick(x)`` takes a
    ``[B, T, ...]`` tensor to the step's query layout (identity at step 0)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    B, T = batch.tokens.shape
    device = batch.tokens.device
    dtype = first_features.dtype if first_features.is_floating_point() else torch.float32
    out = head(ahead(batch.tokens, 1), first_features, batch.positions, cache, ttt_mask(T, 0, dtype).to(device))
    yield 0, out, (lambda x: x)
    if steps < 2:
        return
    chosen = target_mask(batch, 3)
    M = int(chosen.sum(1).max())
    if M == 0:
        return
    order = torch.argsort((~chosen).to(torch.int8), dim=1, stable=True)  # chosen positions first, in order
    idx = order[:, :M]
    real = torch.gather(chosen, 1, idx)

    def pick(x: torch.Tensor) -> torch.Tensor:
        gathered = torch.gather(x, 1, idx.view(B, M, *([1] * (x.dim() - 2))).expand(B, M, *x.shape[2:]))
        return gathered & real if gathered.dtype == torch.bool else gathered

    keys = torch.arange(T, device=device)
    causal = (keys[None, None, :] <= idx[:, :, None]) | ~real[:, :, None]  # padded queries see something
    features = pick(out)
    neg = torch.finfo(dtype).min
    eye = torch.eye(M, dtype=torch.bool, device=device).expand(B, M, M)
    for step in range(1, steps):
        allow = torch.cat([causal] + [eye] * step, dim=2)
        mask = torch.zeros(allow.shape, dtype=dtype, device=device).masked_fill(~allow, neg)[:, None]
        out = head(pick(ahead(batch.tokens, 1 + step)), features, pick(batch.positions) + step, cache, mask)
        yield step, out, pick
        features = out


class EagleObjective:
    """EAGLE's loss. ``targets="soft"`` (default, as EAGLE's code trains): the classification part is
    cross-entropy against the target's distribution at ``t + 1`` (its frozen LM head on the true
    feature); ``"hard"``: against the next token."""

    method = "eagle"
    noise = 0.1
    ce_weight = 0.1

    def __init__(self, eval_positions: int = 5, targets: str = "soft") -> None:
        if targets not in ("soft", "hard"):
            raise ValueError(f"--targets {targets!r}: use soft or hard")
        self.positions = eval_positions
        self.targets = targets

    def settings(self) -> dict:
        return {"targets": self.targets}

    def layers(self, data_layers, options) -> list[int]:
        return [-1]

    def build(self, target, data, options):
        from specplug_eagle.eagle_head import EagleHead

        return EagleHead.for_target(target)

    def loss(self, head, batch: Batch, generator=None):
        feats = batch.states[-1]
        noise = (torch.rand(feats.shape, generator=generator) * 2 - 1).to(feats.device) * self.noise
        out = head(ahead(batch.tokens, 1), feats + noise, batch.positions)
        mask = target_mask(batch, 2)
        if not mask.any():
            return None, {}
        true_next = ahead(feats, 1)[mask]
        reg = F.smooth_l1_loss(out[mask], true_next)
        logits = head.logits(out[mask])
        if self.targets == "soft":
            with torch.no_grad():
                soft = torch.softmax(head.logits(true_next).float(), dim=-1)
            ce = -(soft * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
        else:
            ce = F.cross_entropy(logits, ahead(batch.tokens, 2)[mask])
        return reg + self.ce_weight * ce, {"reg": float(reg.detach()), "ce": float(ce.detach())}

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        feats = batch.states[-1]
        for step, out, pick in rooted_unroll(head, batch, feats, self.positions):
            mask = pick(target_mask(batch, 2 + step))
            if not mask.any():
                continue
            target = pick(ahead(batch.tokens, 2 + step))[mask]
            logits = head.logits(out[mask])
            if step == 0:
                loss = float(F.smooth_l1_loss(out[mask], ahead(feats, 1)[mask])) + self.ce_weight * float(F.cross_entropy(logits, target))
            correct[step] += int((logits.argmax(-1) == target).sum())
            count[step] += len(target)
        return loss, correct, count


class Eagle3Objective:
    """EAGLE-3's training-time test. ``targets="soft"`` (default) trains on the target's distribution
    restricted to the draft vocabulary, as EAGLE-3's code does (softmax over the target's logits at
    the draft ids, computed from the stored final state; positions whose next token is outside the
    draft vocabulary carry no loss); ``"hard"`` on the next token alone. Unroll steps after the first
    run only at roots that carry loss (:func:`rooted_unroll`)."""

    method = "eagle3"

    def __init__(self, ttt_steps: int = 7, draft_vocab: int = 8192, eval_positions: int = 5, aux_layers=None,
                 targets: str = "soft") -> None:
        if targets not in ("soft", "hard"):
            raise ValueError(f"--targets {targets!r}: use soft or hard")
        if ttt_steps < 1:
            raise ValueError(f"--ttt-steps {ttt_steps}: at least 1")
        self.ttt_steps = ttt_steps
        self.draft_vocab = draft_vocab
        self.targets = targets
        self.positions = max(eval_positions, ttt_steps)
        self.aux_layers = list(aux_layers) if aux_layers else None
        self._index = None  # target id -> draft index (-1: not in the draft vocabulary)
        self._target_head = None  # the target's LM head rows of the draft vocabulary [draft_vocab, H]

    def settings(self) -> dict:
        return {"ttt_steps": self.ttt_steps, "draft_vocab": self.draft_vocab, "targets": self.targets}

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
        if self.targets == "soft":
            if -1 not in data_layers:
                raise ValueError("soft targets need the target's final state (layer -1) in the data; remake it with -1 "
                                 "in --layers, or train with --targets hard")
            return self.aux_layers + [-1]
        return self.aux_layers

    def build(self, target, data, options):
        from specplug.kit.drafting import ReducedVocab
        from specplug_eagle.eagle3_head import Eagle3Head

        vocab_size = int(target.get_output_embeddings().weight.shape[0])
        eos = getattr(target.config, "eos_token_id", None)
        always = [eos] if isinstance(eos, int) else list(eos or [])
        vocab = ReducedVocab.most_frequent(data.response_tokens(data.train), self.draft_vocab, vocab_size, always=always)
        head = Eagle3Head.for_target(target, draft_token_ids=vocab.token_ids, aux_layers=self.aux_layers)
        weight = target.get_output_embeddings().weight.detach().float()
        self._target_head = weight[torch.as_tensor(vocab.token_ids, dtype=torch.long)].clone()
        return head

    def _draft_index(self, head) -> torch.Tensor:
        if self._index is None or self._index.numel() != head.t2d.numel() or self._index.device != head.t2d.device:
            index = torch.full((head.t2d.numel(),), -1, dtype=torch.long, device=head.t2d.device)
            index[head.token_ids] = torch.arange(head.draft_vocab_size, device=head.t2d.device)
            self._index = index
        return self._index

    def _soft(self, head, final_states: torch.Tensor) -> torch.Tensor:
        """The target's next-token distribution over the draft vocabulary, from its final states."""
        if self._target_head is None:
            raise RuntimeError("soft targets need build() first (the target's LM head rows)")
        if self._target_head.device != final_states.device:  # moved once (the GPU route)
            self._target_head = self._target_head.to(final_states.device)
        return torch.softmax(final_states.float() @ self._target_head.T, dim=-1)

    def _fused_input(self, batch: Batch) -> torch.Tensor:
        return torch.cat([batch.states[layer] for layer in self.aux_layers], dim=-1)

    def _steps(self, head, batch: Batch, steps: int):
        """``(step, logits, draft targets, token targets, soft targets or None)`` at the positions with loss."""
        index = self._draft_index(head)
        for step, out, pick in rooted_unroll(head, batch, self._fused_input(batch), steps):
            mask = pick(target_mask(batch, 2 + step))
            if not mask.any():
                continue
            tokens = pick(ahead(batch.tokens, 2 + step))[mask]
            soft = None
            if self.targets == "soft" and -1 in batch.states:
                soft = self._soft(head, pick(ahead(batch.states[-1], 1 + step))[mask])
            yield step, head.logits(out[mask]), index[tokens], tokens, soft

    def loss(self, head, batch: Batch, generator=None):
        total, parts, any_target = 0.0, {}, False
        for step, logits, target, _, soft in self._steps(head, batch, self.ttt_steps):
            keep = target >= 0
            if not keep.any():
                continue
            any_target = True
            if soft is not None:
                ce = -(soft[keep] * torch.log_softmax(logits[keep], dim=-1)).sum(-1).mean()
            else:
                ce = F.cross_entropy(logits[keep], target[keep])
            total = total + STEP_DECAY**step * ce
            parts[f"ce{step + 1}"] = float(ce.detach())
        return (total if any_target else None), parts

    @torch.no_grad()
    def evaluate(self, head, batch: Batch):
        """Held-out loss: hard cross-entropy on the next token (comparable across --targets)."""
        loss, correct, count = 0.0, [0] * self.positions, [0] * self.positions
        for step, logits, target, tokens, _ in self._steps(head, batch, self.positions):
            drafted = head.to_target(logits.argmax(-1))
            if step < self.ttt_steps:
                keep = target >= 0
                if keep.any():
                    loss += STEP_DECAY**step * float(F.cross_entropy(logits[keep], target[keep]))
            correct[step] += int((drafted == tokens).sum())
            count[step] += len(tokens)
        return loss, correct, count
