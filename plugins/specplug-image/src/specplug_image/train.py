"""Train the digits image models: a causal transformer over pixel tokens, and a smaller drafter.

Both are plain ``LlamaForCausalLM`` models (vocabulary 27, see :mod:`specplug_image.digits`), saved
with ``save_pretrained`` so specplug's reference engine and vLLM load them like any HF folder. The
command ``specplug models train-digits`` runs :func:`train_digits`; the result lives in the cache
(:func:`default_model_dir`), never in the repository::

    <dir>/config.json, model.safetensors      the target (3 layers, hidden 64)
    <dir>/draft/config.json, ...               the drafter (1 layer, hidden 32)
    <dir>/digits.json                          what it was made from: split, sizes, steps, losses, time

Training: next-token cross-entropy on the 64 pixel tokens after the class token, AdamW with a cosine
schedule, on the training split only; the held-out test split's loss is recorded, not used.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specplug_image.digits import DigitsTokenizer, load_split

__all__ = ["DRAFT", "TARGET", "ModelSize", "TrainConfig", "build_model", "default_model_dir", "fit", "load_digits_models", "nll_per_pixel", "read_report", "train_digits"]

FORMAT = "specplug-digits/1"
_DONE = "digits.json"


@dataclass(frozen=True)
class ModelSize:
    """The shape of one Llama over the digits vocabulary."""

    hidden: int
    layers: int
    heads: int
    intermediate: int


#: The target: ~0.15M parameters; head size 32 (a size vLLM's CPU attention supports).
TARGET = ModelSize(hidden=64, layers=3, heads=2, intermediate=192)
#: The drafter: one layer, ~30x cheaper than the target per token.
DRAFT = ModelSize(hidden=32, layers=1, heads=1, intermediate=64)


@dataclass(frozen=True)
class TrainConfig:
    """How long and how hard to train (defaults: a few CPU minutes for both models)."""

    target_steps: int = 700  # the validation loss (200 training images held back) stops falling here
    draft_steps: int = 800
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    seed: int = 0
    target: ModelSize = TARGET
    draft: ModelSize = DRAFT


def default_model_dir() -> Path:
    """Where ``train-digits`` puts the models unless told otherwise (inside specplug's cache)."""
    from specplug.models import cache_dir

    return cache_dir() / "models" / "digits-ar-v1"


def build_model(size: ModelSize, seed: int):
    """A fresh ``LlamaForCausalLM`` of ``size`` over the digits vocabulary (no BOS/EOS tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = DigitsTokenizer()
    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        head_dim=size.hidden // size.heads,
        max_position_embeddings=128,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        tie_word_embeddings=False,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).float()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fit(model, train: np.ndarray, steps: int, cfg: TrainConfig, label: str, progress: bool = True) -> dict[str, float]:
    """Train ``model`` on token sequences ``train`` [N, 65] for ``steps`` AdamW steps; returns timings."""
    import torch

    rng = np.random.default_rng(cfg.seed)
    data = torch.as_tensor(train, dtype=torch.long)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    start = time.perf_counter()
    loss_avg = None
    for step in range(steps):
        batch = data[rng.integers(0, len(data), size=min(cfg.batch_size, len(data)))]  # [B, 65]
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        loss_avg = float(loss.detach()) if loss_avg is None else 0.95 * loss_avg + 0.05 * float(loss.detach())
        if progress and (step % 100 == 0 or step == steps - 1):
            _log(f"train-digits: {label} step {step + 1}/{steps}, loss {loss_avg:.3f} nats/pixel, {time.perf_counter() - start:.0f}s")
    model.eval()
    return {"seconds": time.perf_counter() - start}


def nll_per_pixel(model, sequences: np.ndarray) -> float:
    """Mean next-token negative log-likelihood (nats) over the pixels of ``sequences`` [N, 65]."""
    import torch

    with torch.inference_mode():
        ids = torch.as_tensor(sequences, dtype=torch.long)
        return float(model(input_ids=ids, labels=ids).loss)


def train_digits(out: Path | None = None, cfg: TrainConfig | None = None, force: bool = False, progress: bool = True) -> Path:
    """Train the target and the drafter on the digits' training split and save them under ``out``.

    An existing finished folder (its ``digits.json`` written last) is reused unless ``force``.
    Returns the folder.
    """
    cfg = cfg or TrainConfig()
    out = Path(out) if out is not None else default_model_dir()
    if (out / _DONE).exists() and not force:
        if progress:
            _log(f"train-digits: {out} is already trained (pass --force to retrain)")
        return out
    split = load_split()
    train, test = split.sequences("train"), split.sequences("test")
    report: dict[str, Any] = {"format": FORMAT, "config": asdict(cfg), "made_by": "specplug models train-digits",
                              "train_images": len(train), "test_images": len(test)}
    for name, size, steps, where in (("target", cfg.target, cfg.target_steps, out),
                                     ("draft", cfg.draft, cfg.draft_steps, out / "draft")):
        model = build_model(size, cfg.seed)
        timing = fit(model, train, steps, cfg, name, progress)
        where.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(where), safe_serialization=True)
        report[name] = {
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "steps": steps,
            "train_nll": nll_per_pixel(model, train),
            "test_nll": nll_per_pixel(model, test),
            **timing,
        }
        if progress:
            _log(f"train-digits: {name}: test NLL {report[name]['test_nll']:.3f} nats/pixel "
                 f"(train {report[name]['train_nll']:.3f}), {timing['seconds']:.0f}s")
    (out / _DONE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return out


def read_report(path: Path) -> dict[str, Any]:
    """The ``digits.json`` of a trained folder (raises with the fix when the folder is not trained)."""
    done = Path(path) / _DONE
    if not done.exists():
        raise FileNotFoundError(f"{path} holds no trained digits models; run: specplug models train-digits --out {path}")
    return json.loads(done.read_text(encoding="utf-8"))


def load_digits_models(path: Path | None = None):
    """``(target, draft)`` from a folder made by :func:`train_digits`, float32, eval mode."""
    from transformers import LlamaForCausalLM

    path = Path(path) if path is not None else default_model_dir()
    read_report(path)
    target = LlamaForCausalLM.from_pretrained(str(path)).float().eval()
    draft = LlamaForCausalLM.from_pretrained(str(path / "draft")).float().eval()
    return target, draft

