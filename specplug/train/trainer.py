"""The training loop every head shares: budget, deterministic batches, checkpoints that resume,
progress, held-out accuracy, export to vLLM's format.

What is trained comes from the objective a plugin registers for ``TrainConfig.method``
(:class:`specplug.train.spec.ObjectiveSpec`, hook ``specplug_register_objectives``): the head, its
loss and evaluation, its default learning rate, its own options and any export beside vLLM's.

Budgets (``--budget``):

- ``tiny``: 40 steps on short batches (seconds on a tiny random model; what the tests use);
- ``default``: 60 minutes of training (SmolLM2 on 2 CPU cores: about an hour plus the evaluation);
- a number: that many minutes.

Training stops at the budget (time counts across resumed runs) or after ``max_epochs`` passes over
the data. ``training/state.pt`` in the output folder holds the head, the optimizer and the position
in the data; it is saved every ``checkpoint_every`` seconds and at the end, and a rerun with the same
settings continues from it (``--restart`` starts over). Batch ``i`` of epoch ``e`` and the noise of
step ``s`` depend only on the seed, so a resumed run trains exactly like an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = ["BUDGETS", "TrainConfig", "TrainError", "train_head"]


class TrainError(ValueError):
    """Training that cannot start or continue; the message names the fix."""


#: name -> (minutes or None, max steps or None, batch tokens, max sequence length, held-out sequences)
BUDGETS = {
    "tiny": (None, 40, 512, 128, 4),
    "default": (60.0, None, 2048, 1536, None),
}


@dataclass(init=False)
class TrainConfig:
    """One training run. Keyword arguments that are not fields below are the objective's own options
    (its command's ``cli_options``) and land in :attr:`options`."""

    method: str
    model: str = "smollm2-135m"
    data: str | None = None
    out: str | None = None
    budget: str = "default"
    seed: int = 0
    lr: float | None = None
    batch_tokens: int | None = None
    max_len: int | None = None
    max_epochs: int = 50
    max_steps: int | None = None  # stop this run after this many steps in all (an interruption, for tests)
    checkpoint_every: float = 120.0
    eval_positions: int = 5
    restart: bool = False
    quiet: bool = False
    schedule: str = "cosine"  # cosine: decays to min_lr_ratio of lr over the budget; constant
    device: str = "cpu"
    dtype: str = "float32"  # bfloat16: autocast for the head's forward (the GPU route)
    data_fraction: float = 1.0  # train on the first part of the data (same held-out set)
    options: dict = field(default_factory=dict)

    def __init__(self, method: str, options: dict | None = None, **settings) -> None:
        self.method = method
        self.options = dict(options or {})
        for item in fields(self):
            if item.name not in ("method", "options"):
                setattr(self, item.name, settings.pop(item.name, item.default))
        self.options.update(settings)

    def spec(self):
        """The registered :class:`~specplug.train.spec.ObjectiveSpec` of ``method``."""
        from specplug.registry import UnknownIdError, get_registry

        try:
            return get_registry().objective(self.method)
        except UnknownIdError as err:
            raise TrainError(str(err)) from None

    def resolved(self) -> dict:
        if self.budget in BUDGETS:
            minutes, steps, batch_tokens, max_len, eval_limit = BUDGETS[self.budget]
        else:
            try:
                minutes = float(self.budget)
            except ValueError:
                raise TrainError(f"--budget {self.budget!r}: use tiny, default or a number of minutes") from None
            if minutes <= 0:
                raise TrainError(f"--budget {self.budget!r}: the number of minutes must be positive")
            steps, batch_tokens, max_len, eval_limit = None, 2048, 1536, None
        return {"minutes": minutes, "steps": steps, "batch_tokens": self.batch_tokens or batch_tokens,
                "max_len": self.max_len or max_len, "eval_limit": eval_limit, "lr": self.lr or self.spec().default_lr}


MIN_LR_RATIO = 0.1


def lr_factor(schedule: str, step: int, warmup: int, progress_fraction: float) -> float:
    """The learning rate's multiplier: linear warm-up over ``warmup`` steps, then ``constant`` or a
    ``cosine`` decay from 1 to :data:`MIN_LR_RATIO` as ``progress_fraction`` (share of the budget
    spent: time for minute budgets, steps for step budgets) goes from 0 to 1."""
    import math

    warm = min(1.0, (step + 1) / warmup)
    if schedule == "constant":
        return warm
    if schedule != "cosine":
        raise TrainError(f"--schedule {schedule!r}: use cosine or constant")
    frac = min(1.0, max(0.0, progress_fraction))
    return warm * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * frac)))


def _objective(cfg: TrainConfig):
    try:
        return cfg.spec().factory(cfg)
    except TypeError as err:  # an option the objective does not take
        raise TrainError(f"{cfg.method}: {err}") from None


def _call(objective, name: str, default):
    """``objective.name()`` for the optional parts of the objective protocol, else ``default``."""
    method = getattr(objective, name, None)
    return method() if method is not None else default


def evaluate(objective, head, data, settings) -> dict:
    """Held-out loss and top-1 accuracy per draft position."""
    head.eval()
    loss, batches = 0.0, 0
    correct, count = [0] * objective.positions, [0] * objective.positions
    for indices in data.eval_batches(settings["batch_tokens"], settings["max_len"], settings["eval_limit"]):
        batch = data.batch(indices, settings["max_len"])
        if settings.get("device") is not None:
            batch = batch.to(settings["device"])
        with (settings.get("autocast") or _no_autocast)():
            batch_loss, c, n = objective.evaluate(head, batch)
        loss += batch_loss
        batches += 1
        correct = [a + b for a, b in zip(correct, c)]
        count = [a + b for a, b in zip(count, n)]
    head.train()
    return {"loss": loss / max(1, batches), "accuracy": [c / n if n else None for c, n in zip(correct, count)], "positions": count}


def _no_autocast():
    import contextlib

    return contextlib.nullcontext()


def accuracy_line(result: dict) -> str:
    parts = [f"{i + 1}: {a:.3f}" for i, a in enumerate(result["accuracy"]) if a is not None]
    return f"held-out top-1 accuracy by draft position ({result['positions'][0]} positions): " + "  ".join(parts)


def train_head(cfg: TrainConfig, log=print) -> Path:
    """Train (or finish training) one head and export it; returns the head folder."""
    import torch

    from specplug.kit.heads import HeadMetadata, default_head_dir, target_fingerprint, target_summary
    from specplug.train.data import _load_target, default_data_dir
    from specplug.train.dataset import TrainingData
    from specplug.train.progress import progress_bar

    settings = cfg.resolved()
    objective = _objective(cfg)
    target, _ = _load_target(cfg.model)
    fingerprint = target_fingerprint(target)
    data_dir = Path(cfg.data).expanduser() if cfg.data else default_data_dir(fingerprint)
    from specplug.train.data import read_manifest

    manifest = read_manifest(data_dir)
    layers = objective.layers(manifest["layers"], cfg)
    data = TrainingData(data_dir, layers, fingerprint, train_fraction=cfg.data_fraction)
    device, dtype = _device(cfg)
    settings["device"] = device
    settings["autocast"] = None
    out = Path(cfg.out).expanduser() if cfg.out else default_head_dir(fingerprint, cfg.method)
    state_path = out / "training" / "state.pt"

    torch.manual_seed(cfg.seed)
    head = objective.build(target, data, cfg).to(device)
    head.train()
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings["lr"], betas=(0.9, 0.95), weight_decay=0.0)
    identity = {"method": cfg.method, "data": data.id, "target": fingerprint, "seed": cfg.seed, "lr": settings["lr"],
                "batch_tokens": settings["batch_tokens"], "max_len": settings["max_len"],
                **_call(objective, "settings", {}), "layers": layers, "schedule": cfg.schedule,
                **({"dtype": cfg.dtype} if cfg.dtype != "float32" else {}),
                **({"data_fraction": cfg.data_fraction} if cfg.data_fraction != 1.0 else {})}
    identity_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    progress = {"step": 0, "epoch": 0, "batch": 0, "elapsed": 0.0, "tokens": 0, "initial_eval": None, "losses": []}
    if state_path.exists() and not cfg.restart:
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        if saved.get("identity_id") != identity_id:
            raise TrainError(f"{out} holds a {saved.get('identity', {}).get('method')} run with other settings; "
                             "use another --out, or --restart to start over")
        head.load_state_dict(saved["head"])
        head.to(device)
        optimizer.load_state_dict(saved["optimizer"])
        progress = saved["progress"]
        log(f"resuming {cfg.method} at step {progress['step']} ({progress['elapsed']:.0f} s trained)")
    else:
        progress["initial_eval"] = evaluate(objective, head, data, settings)
    if dtype != torch.float32:
        settings["autocast"] = lambda: torch.autocast(device_type=device.type, dtype=dtype)

    def save_state() -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"identity_id": identity_id, "identity": identity, "head": head.state_dict(),
                    "optimizer": optimizer.state_dict(), "progress": progress}, tmp)
        tmp.replace(state_path)

    budget_s = settings["minutes"] * 60 if settings["minutes"] else None
    step_limit = settings["steps"]
    if cfg.max_steps is not None:
        step_limit = min(step_limit, cfg.max_steps) if step_limit is not None else cfg.max_steps
    warmup = 5 if settings["steps"] else 50
    step_limit_schedule = settings["steps"]  # the budget's steps (an interruption by --max-steps does not move the schedule)

    def finished() -> bool:
        return ((budget_s is not None and progress["elapsed"] >= budget_s)
                or (step_limit is not None and progress["step"] >= step_limit)
                or progress["epoch"] >= cfg.max_epochs)

    total = budget_s if budget_s is not None else step_limit
    last_save = time.monotonic()
    with progress_bar(f"train {cfg.method}", total or cfg.max_epochs, "s" if budget_s else "steps", cfg.quiet) as advance:
        advance(min(progress["elapsed"], total) if budget_s else progress["step"])
        while not finished():
            batches = data.epoch_batches(progress["epoch"], cfg.seed, settings["batch_tokens"], settings["max_len"])
            while progress["batch"] < len(batches) and not finished():
                started = time.monotonic()
                batch = data.batch(batches[progress["batch"]], settings["max_len"]).to(device)
                generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + progress["step"])
                spent_share = (progress["elapsed"] / budget_s if budget_s is not None
                               else progress["step"] / step_limit_schedule if step_limit_schedule else 0.0)
                for group in optimizer.param_groups:
                    group["lr"] = settings["lr"] * lr_factor(cfg.schedule, progress["step"], warmup, spent_share)
                with (settings["autocast"] or _no_autocast)():
                    loss, parts = objective.loss(head, batch, generator)
                if loss is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 0.5)
                    optimizer.step()
                    progress["losses"].append(float(loss.detach()))
                progress["step"] += 1
                progress["batch"] += 1
                progress["tokens"] += batch.num_tokens
                spent = time.monotonic() - started
                progress["elapsed"] += spent
                recent = progress["losses"][-20:]
                advance(spent if budget_s else 1, loss=sum(recent) / max(1, len(recent)))
                if time.monotonic() - last_save >= cfg.checkpoint_every:
                    save_state()
                    last_save = time.monotonic()
            if progress["batch"] >= len(batches):
                progress["epoch"] += 1
                progress["batch"] = 0
    save_state()

    final = evaluate(objective, head, data, settings)
    head.to("cpu")
    losses = progress["losses"]
    training = {"steps": progress["step"], "epochs": progress["epoch"], "batch_in_epoch": progress["batch"],
                "tokens_seen": progress["tokens"], "seconds": round(progress["elapsed"], 1), "budget": cfg.budget,
                "settings": identity, "first_loss": losses[0] if losses else None,
                "last_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None,
                "initial_eval": progress["initial_eval"], "held_out": final,
                "data_tokens": data.manifest.get("tokens"), "held_out_sequences": len(data.held_out),
                "train_sequences": len(data.train), "train_tokens": data.train_tokens,
                "train_response_tokens": data.train_response_tokens, "device": str(device),
                "memorisation": _memorisation(objective, head, data, settings, final)}
    metadata = HeadMetadata(cfg.method, target_summary(target, str(cfg.model)), head.hidden_state_layers,
                            int(getattr(head, "draft_vocab_size", None) or target.get_output_embeddings().weight.shape[0]),
                            data_manifest_id=data.id, training=training,
                            extra=_call(objective, "metadata_extra", {}))
    head.save_pretrained(out, metadata)
    if hasattr(objective, "export"):
        objective.export(head, out, metadata, cfg)
    log(f"{cfg.method} head: {out} ({progress['step']} steps, {progress['tokens']} tokens, {progress['elapsed']:.0f} s; "
        f"held-out loss {progress['initial_eval']['loss'] if progress['initial_eval'] else float('nan'):.4f} -> {final['loss']:.4f})")
    memo = training["memorisation"]
    log(f"train vs held-out ({memo['train_sequences']} sequences each): loss {memo['train_loss']:.4f} vs "
        f"{memo['held_out_loss']:.4f}, top-1 at position 1 {memo['train_top1']:.3f} vs {memo['held_out_top1']:.3f}"
        f"{' (memorises: held-out loss over 25% above training)' if memo['memorises'] else ''}")
    log(accuracy_line(final))
    return out


def _device(cfg: TrainConfig):
    import torch

    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"--device {cfg.device}: no CUDA device here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise TrainError(f"--device {cfg.device}: use cpu or cuda")
    if cfg.dtype not in ("float32", "bfloat16"):
        raise TrainError(f"--dtype {cfg.dtype!r}: use float32 or bfloat16")
    return device, getattr(torch, cfg.dtype)


def _memorisation(objective, head, data, settings, held_out: dict) -> dict:
    """The same evaluation on as many training sequences as there are held-out ones: a head that
    memorises has a much lower loss (and higher accuracy) on what it trained on."""
    saved = data.held_out
    count = len(saved) if settings["eval_limit"] is None else min(len(saved), settings["eval_limit"])
    step = max(1, len(data.train) // max(1, count))
    data.held_out = data.train[::step][:count]
    try:
        train = evaluate(objective, head.to(settings["device"]), data, settings)
    finally:
        data.held_out = saved
        head.to("cpu")
    first = lambda r: r["accuracy"][0] if r["accuracy"] and r["accuracy"][0] is not None else 0.0  # noqa: E731
    gap = held_out["loss"] - train["loss"]
    return {"train_sequences": count, "train_loss": train["loss"], "held_out_loss": held_out["loss"],
            "train_top1": first(train), "held_out_top1": first(held_out), "loss_gap": gap,
            "memorises": bool(gap > 0.25 * max(abs(held_out["loss"]), 1e-9))}


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
