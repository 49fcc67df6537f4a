"""Distil a draft decoder from a Whisper target (distil-whisper's recipe, scaled to a CPU).

1. **Pseudo-labels**: the target transcribes the training utterances greedily (its own transcripts
   are the labels; distil-whisper's pseudo-labelling); the encoder output of each is kept.
2. **Draft vocabulary**: the ``vocab_size`` ids most frequent in those transcripts and in the
   training sentences' text, plus EOS (:class:`~specplug.kit.drafting.ReducedVocab`).
3. **Teacher targets**: one teacher-forced target forward per utterance gives the target's logits
   at every position of its transcript, restricted to the draft vocabulary.
4. **Student**: a decoder of ``len(layers)`` layers initialised from those target layers (first and
   last by default), sharing the target's frozen encoder and embeddings; trained with
   ``CE(pseudo-label) + 0.8 * KL(teacher || student)`` (distil-whisper's weights) by AdamW. Its
   cross-attention key/value projections stay the target's (frozen, so their 1500-frame outputs are
   computed once per utterance: on a CPU they are most of a training step).

What is left out of distil-whisper: its 22,000 hours of pseudo-labelled speech (here a few hundred
synthesised utterances), its WER filter on pseudo-labels (the labels are what the target says, which
is exactly what a draft must predict), and SpecAugment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["DistillData", "distill", "labelled", "pseudo_label", "train_draft"]

KL_WEIGHT = 0.8  # distil-whisper's alpha_KL (CE weight 1)


@dataclass
class DistillData:
    """Per utterance: the encoder output [frames, d] (float16), the target's transcript ids."""

    prompt: list[int]
    encoder: list[torch.Tensor] = field(default_factory=list)
    transcripts: list[list[int]] = field(default_factory=list)


@torch.inference_mode()
def greedy_transcript(target_lm, prompt: Sequence[int], eos: int, max_new_tokens: int) -> list[int]:
    """Plain greedy decoding of the encoded utterance (the pseudo-label)."""
    target_lm.reset()
    logits = target_lm.forward(list(prompt), logits_to_keep=1)[-1]
    out: list[int] = []
    limit = min(max_new_tokens, target_lm.max_positions - len(prompt))
    while len(out) < limit:
        token = int(logits.argmax())
        out.append(token)
        if token == eos:
            break
        logits = target_lm.forward([token], logits_to_keep=1)[-1]
    return out


def pseudo_label(target, feature_extractor, audios: Sequence[np.ndarray], prompt: Sequence[int], eos: int,
                 max_new_tokens: int = 96, log=print) -> DistillData:
    """Encode every utterance and transcribe it with the target (step 1)."""
    from specplug.kit.seq2seq import SAMPLE_RATE, Seq2SeqTarget

    lm = Seq2SeqTarget(target)
    data = DistillData(list(prompt))
    start = time.perf_counter()
    for i, samples in enumerate(audios):
        features = feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        states = lm.encode(features)
        data.encoder.append(states[0].to(torch.float16))
        data.transcripts.append(greedy_transcript(lm, prompt, eos, max_new_tokens))
        if (i + 1) % 25 == 0:
            log(f"pseudo-labelled {i + 1}/{len(audios)} utterances ({time.perf_counter() - start:.0f} s)")
    return data


def _batch(data: DistillData, rows: Sequence[int]):
    """Decoder inputs [B, T], label ids [B, T] (-100 = padding) and encoder states [B, frames, d]."""
    seqs = [data.prompt + data.transcripts[r] for r in rows]
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(rows), width), data.prompt[0], dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    first = len(data.prompt) - 1  # the position whose next token is the transcript's first
    for b, s in enumerate(seqs):
        inputs[b, : len(s) - 1] = torch.tensor(s[:-1])
        labels[b, first : len(s) - 1] = torch.tensor(s[len(data.prompt):])
    encoder = torch.stack([data.encoder[r] for r in rows]).float()
    return inputs, labels, encoder


@torch.no_grad()
def teacher_logits(target, data: DistillData, rows: Sequence[int], vocab_ids: torch.Tensor) -> torch.Tensor:
    """The target's logits over the draft vocabulary at every position of ``rows`` [B, T, N] (step 3)."""
    inputs, _, encoder = _batch(data, rows)
    dtype = next(target.parameters()).dtype
    hidden = target.model.decoder(input_ids=inputs, encoder_hidden_states=encoder.to(dtype), use_cache=False).last_hidden_state
    return (hidden.float() @ target.proj_out.weight[vocab_ids].float().T)


@torch.no_grad()
def _cross_keys_values(draft, encoder: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The draft's cross-attention keys and values over one utterance, per layer ([1, heads, frames, head_dim], float16)."""
    out = []
    for layer in draft.model.decoder.layers:
        attention = layer.encoder_attn
        shape = (1, -1, attention.num_heads, attention.head_dim)
        states = encoder[None].to(next(draft.parameters()).dtype)
        keys = attention.k_proj(states).view(shape).transpose(1, 2)
        values = attention.v_proj(states).view(shape).transpose(1, 2)
        out.append((keys.to(torch.float16), values.to(torch.float16)))
    return out


def _student_logits(draft, inputs: torch.Tensor, cross: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> torch.Tensor:
    """The draft's logits [B, T, N] with precomputed cross-attention keys and values (the 1500-frame
    projections are the bulk of a CPU training step; they are frozen and computed once per utterance)."""
    from transformers import DynamicCache, EncoderDecoderCache

    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    for index in range(len(draft.model.decoder.layers)):
        keys = torch.cat([c[index][0] for c in cross]).float()
        values = torch.cat([c[index][1] for c in cross]).float()
        cache.cross_attention_cache.update(keys, values, index)
        cache.is_updated[index] = True
    placeholder = torch.zeros(inputs.shape[0], 1, draft.config.d_model)  # cross-attention reads the cache, not this
    hidden = draft.model.decoder(input_ids=inputs, encoder_hidden_states=placeholder, past_key_values=cache, use_cache=True).last_hidden_state
    return draft.proj_out(hidden).float()


def train_draft(target, draft, data: DistillData, steps: int, batch_size: int = 8, lr: float = 3e-4, seed: int = 0,
                holdout: float = 0.1, log=print) -> dict:
    """Distil ``draft`` (from :func:`specplug.kit.whisper_draft.build_draft_decoder`) on ``data`` (step 4).

    The teacher's logits (over the draft vocabulary) and the draft's cross-attention keys and values
    are computed once per utterance; the cross-attention key/value projections stay the target's
    (frozen), everything else in the draft's layers and final norm trains. Returns figures measured
    on the held-out tail of ``data``: the draft's greedy agreement with the target's next token before
    and after training, the final loss, the time taken.
    """
    vocab = draft.specplug_vocab
    if vocab is None:
        raise ValueError("train_draft needs a draft with a reduced vocabulary (the teacher targets live on it)")
    vocab_ids = torch.as_tensor(vocab.token_ids)
    to_draft = torch.full((int(target.get_output_embeddings().weight.shape[0]),), -100, dtype=torch.long)
    to_draft[vocab_ids] = torch.arange(len(vocab_ids))
    count = len(data.transcripts)
    held = max(1, int(round(count * holdout))) if count > 1 else 0
    train_rows, eval_rows = list(range(count - held)), list(range(count - held, count))
    if not train_rows:
        raise ValueError("distillation needs at least two utterances (one is held out)")
    start = time.perf_counter()
    teacher = [teacher_logits(target, data, [r], vocab_ids)[0].to(torch.float16) for r in train_rows]  # [T_r, N]
    cross = [_cross_keys_values(draft, data.encoder[r]) for r in train_rows]
    log(f"teacher logits and cross-attention keys/values of {len(train_rows)} utterances: {time.perf_counter() - start:.0f} s")
    frozen = {id(p) for layer in draft.model.decoder.layers for p in (*layer.encoder_attn.k_proj.parameters(), *layer.encoder_attn.v_proj.parameters())}
    params = [p for m in (draft.model.decoder.layers, draft.model.decoder.layer_norm) for p in m.parameters() if id(p) not in frozen]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    before = agreement(draft, data, eval_rows, to_draft)
    loss_value = first_loss = float("nan")
    draft.train()
    for step in range(steps):
        picks = torch.randint(len(train_rows), (min(batch_size, len(train_rows)),), generator=generator).tolist()
        rows = [train_rows[i] for i in picks]
        inputs, labels, _ = _batch(data, rows)
        width = inputs.shape[1]
        target_logits = torch.stack([torch.nn.functional.pad(teacher[i].float(), (0, 0, 0, width - teacher[i].shape[0])) for i in picks])
        student = _student_logits(draft, inputs, [cross[i] for i in picks])  # [B, T, N]
        mask = labels >= 0
        draft_labels = to_draft[labels.clamp(min=0)]
        ce = torch.nn.functional.cross_entropy(student[mask], draft_labels[mask].clamp(min=0))
        kl = torch.nn.functional.kl_div(student[mask].log_softmax(-1), target_logits[mask].log_softmax(-1), log_target=True, reduction="batchmean")
        loss = ce + KL_WEIGHT * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
        if step == 0:
            first_loss = loss_value
        if (step + 1) % 25 == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps}: loss {loss_value:.3f} (ce {float(ce.detach()):.3f}, kl {float(kl.detach()):.3f}), {time.perf_counter() - start:.0f} s")
    draft.eval()
    for p in params:
        p.requires_grad_(False)
    after = agreement(draft, data, eval_rows, to_draft)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "train_utterances": len(train_rows),
            "heldout_utterances": len(eval_rows), "agreement_before": before, "agreement_after": after,
            "first_loss": first_loss, "final_loss": loss_value, "train_s": round(time.perf_counter() - start, 1)}


@torch.no_grad()
def agreement(draft, data: DistillData, rows: Sequence[int], to_draft: torch.Tensor) -> float | None:
    """How often the draft's greedy token equals the target's next token, teacher-forced on the target's transcripts."""
    if not rows:
        return None
    inputs, labels, encoder = _batch(data, rows)
    hidden = draft.model.decoder(input_ids=inputs, encoder_hidden_states=encoder.to(next(draft.parameters()).dtype), use_cache=False).last_hidden_state
    guess = draft.proj_out(hidden).argmax(-1)
    mask = labels >= 0
    return round(float((guess[mask] == to_draft[labels[mask]]).float().mean()), 4)


def labelled(target, feature_extractor, audios: Sequence[np.ndarray], prompt: Sequence[int], eos: int, max_new_tokens: int = 96,
             labels_cache: str | Path | None = None, log=print) -> DistillData:
    """Step 1 (:func:`pseudo_label`), kept in ``labels_cache`` and reused by a later run with the same
    number of utterances and prompt (every draft trained on the same speech shares it)."""
    if labels_cache is not None and Path(labels_cache).exists():
        saved = torch.load(labels_cache)
        if len(saved["transcripts"]) == len(audios) and saved["prompt"] == list(prompt):
            return DistillData(saved["prompt"], list(saved["encoder"]), saved["transcripts"])
    data = pseudo_label(target, feature_extractor, audios, prompt, eos, max_new_tokens=max_new_tokens, log=log)
    if labels_cache is not None:
        Path(labels_cache).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"prompt": data.prompt, "encoder": torch.stack(data.encoder), "transcripts": data.transcripts}, labels_cache)
    return data


def distill(target, tokenizer, feature_extractor, audios: Sequence[np.ndarray], texts: Sequence[str], prompt: Sequence[int],
            eos: int, layers: Sequence[int], vocab_size: int, steps: int, out: str | Path, batch_size: int = 8,
            lr: float = 3e-4, seed: int = 0, max_new_tokens: int = 96, labels_cache: str | Path | None = None,
            log=print) -> dict:
    """Steps 1-4 end to end; writes the draft to ``out`` and returns its figures.

    ``labels_cache``: a file keeping step 1's pseudo-labels and encoder outputs, reused by a later run
    with the same number of utterances (training another draft shape costs only the training)."""
    from specplug.kit.drafting import ReducedVocab
    from specplug.kit.whisper_draft import build_draft_decoder, save_draft_decoder

    torch.manual_seed(seed)
    data = labelled(target, feature_extractor, audios, prompt, eos, max_new_tokens, labels_cache, log)
    sequences = list(data.transcripts)
    if tokenizer is not None:
        sequences += [tokenizer.encode(" " + t, add_special_tokens=False) for t in texts]
    vocab_total = int(target.get_output_embeddings().weight.shape[0])
    vocab = ReducedVocab.most_frequent(sequences, min(vocab_size, vocab_total), vocab_total, always=[eos])
    draft = build_draft_decoder(target, layers, vocab)
    figures = train_draft(target, draft, data, steps, batch_size=batch_size, lr=lr, seed=seed, log=log)
    figures.update(vocab_size=len(vocab), utterances=len(audios))
    save_draft_decoder(draft, target, out, {"training": figures})
    return figures
