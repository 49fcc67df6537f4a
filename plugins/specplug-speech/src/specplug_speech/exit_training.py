"""Train Kangaroo's exit adapter for a Whisper target on its own transcripts (the adapter only).

Kangaroo trains nothing but the adapter: the shallow sub-network and the LM head are the target's,
frozen. So the features the adapter reads never change during training, and one teacher-forced
target forward per utterance gives everything training needs (:func:`exit_features`):

- the residual stream entering decoder layer ``l`` (the shallow sub-network's output) at every
  position of the target's transcript;
- the target's own logits there, restricted to the draft vocabulary (the distillation target).

:func:`train_exit` then fits the adapter on those tensors alone (no encoder, no cross-attention, no
decoder layer runs in the loop), with Kangaroo's objective, the cross-entropy of the adapter's
distribution against the target's (here as ``KL(target || draft)``, the same minimiser), plus
the cross-entropy to the target's greedy token (the pseudo-label), weighted as distil-whisper's
recipe (:data:`specplug_speech.distill.KL_WEIGHT`). Its figures: held-out greedy agreement with the
target's next token, teacher-forced, before (the untrained exit: plain early exit) and after.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from specplug_speech.distill import KL_WEIGHT, DistillData, _batch

__all__ = ["ExitFeatures", "exit_agreement", "exit_features", "train_exit"]


@dataclass
class ExitFeatures:
    """Per utterance: layer-``l`` states [T, d], the target's logits over the draft vocabulary [T, N]
    (float16), and label ids in draft indices [T] (-100 where the position predicts nothing)."""

    exit_layer: int
    states: list[torch.Tensor]
    teacher: list[torch.Tensor]
    labels: list[torch.Tensor]


@torch.no_grad()
def exit_features(target, data: DistillData, exit_layer: int, vocab_ids: torch.Tensor) -> ExitFeatures:
    to_draft = torch.full((int(target.get_output_embeddings().weight.shape[0]),), -100, dtype=torch.long)
    to_draft[vocab_ids] = torch.arange(len(vocab_ids))
    head = target.proj_out.weight[vocab_ids].float()  # [N, d]
    dtype = next(target.parameters()).dtype
    out = ExitFeatures(exit_layer, [], [], [])
    for row in range(len(data.transcripts)):
        inputs, labels, encoder = _batch(data, [row])
        result = target.model.decoder(input_ids=inputs, encoder_hidden_states=encoder.to(dtype), use_cache=False, output_hidden_states=True)
        out.states.append(result.hidden_states[exit_layer][0].float())  # the residual stream entering layer l
        out.teacher.append((result.last_hidden_state[0].float() @ head.T).to(torch.float16))
        label = labels[0]
        out.labels.append(torch.where(label >= 0, to_draft[label.clamp(min=0)], torch.full_like(label, -100)))
    return out


def _padded(features: ExitFeatures, rows: Sequence[int]):
    width = max(features.states[r].shape[0] for r in rows)
    d, n = features.states[rows[0]].shape[1], features.teacher[rows[0]].shape[1]
    states = torch.zeros(len(rows), width, d)
    teacher = torch.zeros(len(rows), width, n)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for b, r in enumerate(rows):
        t = features.states[r].shape[0]
        states[b, :t], teacher[b, :t], labels[b, :t] = features.states[r], features.teacher[r].float(), features.labels[r]
    return states, teacher, labels


def _logits(adapter, head_weight: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    return adapter.forward_sequence(states) @ head_weight.T


@torch.no_grad()
def exit_agreement(adapter, head_weight: torch.Tensor, features: ExitFeatures, rows: Sequence[int]) -> float | None:
    """How often the exit's greedy token equals the target's next token (teacher-forced), over ``rows``."""
    if not rows:
        return None
    states, _, labels = _padded(features, rows)
    guess = _logits(adapter, head_weight, states).argmax(-1)
    mask = labels >= 0
    return round(float((guess[mask] == labels[mask]).float().mean()), 4)


def train_exit(adapter, head_weight: torch.Tensor, features: ExitFeatures, steps: int, batch_size: int = 32, lr: float = 1e-3,
               seed: int = 0, holdout: float = 0.1, log=print) -> dict:
    """Fit ``adapter`` (an :class:`~specplug_speech.early_exit.ExitAdapter`, float32) in place; returns its figures.

    ``head_weight``: the frozen draft head [N, d] (the target's tied projection rows of the draft
    vocabulary). The last ``holdout`` share of the utterances is held out for the agreement figures."""
    count = len(features.states)
    held = max(1, int(round(count * holdout))) if count > 1 else 0
    train_rows, eval_rows = list(range(count - held)), list(range(count - held, count))
    if not train_rows:
        raise ValueError("training an exit needs at least two utterances (one is held out)")
    start = time.perf_counter()
    before = exit_agreement(adapter, head_weight, features, eval_rows)
    params = [p for p in adapter.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps))
    generator = torch.Generator().manual_seed(seed)
    first_loss = loss_value = float("nan")
    adapter.train()
    for step in range(steps):
        picks = torch.randint(len(train_rows), (min(batch_size, len(train_rows)),), generator=generator).tolist()
        states, teacher, labels = _padded(features, [train_rows[i] for i in picks])
        mask = labels >= 0
        student = _logits(adapter, head_weight, states)[mask]
        ce = torch.nn.functional.cross_entropy(student, labels[mask])
        kl = torch.nn.functional.kl_div(student.log_softmax(-1), teacher[mask].log_softmax(-1), log_target=True, reduction="batchmean")
        loss = ce + KL_WEIGHT * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = float(loss.detach())
        if step == 0:
            first_loss = loss_value
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps}: loss {loss_value:.3f} (ce {float(ce.detach()):.3f}, kl {float(kl.detach()):.3f}), {time.perf_counter() - start:.0f} s")
    adapter.eval()
    for p in params:
        p.requires_grad_(False)
    after = exit_agreement(adapter, head_weight, features, eval_rows)
    return {"exit_layer": features.exit_layer, "steps": steps, "batch_size": batch_size, "lr": lr, "train_utterances": len(train_rows),
            "heldout_utterances": len(eval_rows), "agreement_before": before, "agreement_after": after,
            "first_loss": first_loss, "final_loss": loss_value, "train_s": round(time.perf_counter() - start, 1)}


def train_early_exit(target, tokenizer, data: DistillData, texts: Sequence[str], eos: int, exit_layer: int, vocab_size: int, steps: int,
                     out, batch_size: int = 32, lr: float = 1e-3, seed: int = 0, log=print) -> dict:
    """Build the draft vocabulary (as :func:`specplug_speech.distill.distill` does), train the exit at
    ``exit_layer`` on ``data`` (pseudo-labels) and save it to ``out``; returns its figures."""
    from specplug.kit.drafting import ReducedVocab
    from specplug_speech.early_exit import build_early_exit_draft, save_early_exit_draft

    torch.manual_seed(seed)
    sequences = list(data.transcripts)
    if tokenizer is not None:
        sequences += [tokenizer.encode(" " + t, add_special_tokens=False) for t in texts]
    vocab_total = int(target.get_output_embeddings().weight.shape[0])
    vocab = ReducedVocab.most_frequent(sequences, min(vocab_size, vocab_total), vocab_total, always=[eos])
    draft = build_early_exit_draft(target, exit_layer, vocab)
    adapter = draft.specplug_adapter.float()
    vocab_ids = torch.as_tensor(vocab.token_ids)
    start = time.perf_counter()
    features = exit_features(target, data, exit_layer, vocab_ids)
    log(f"layer-{exit_layer} states and target logits of {len(data.transcripts)} utterances: {time.perf_counter() - start:.0f} s")
    figures = train_exit(adapter, draft.proj_out.weight.detach().float(), features, steps, batch_size=batch_size, lr=lr, seed=seed, log=log)
    figures.update(vocab_size=len(vocab), utterances=len(data.transcripts))
    adapter.to(next(target.parameters()).dtype)
    save_early_exit_draft(draft, target, out, {"training": figures})
    return figures
