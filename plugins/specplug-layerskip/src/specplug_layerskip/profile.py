"""The layer-skip profile: which sub-layers a self-drafter skips, and what calibration measured.

A profile is a small JSON file (a pydantic model, validated on load) written by
``specplug layerskip calibrate`` into the cache, one per target model and method::

    <cache>/layerskip/<model fingerprint>/<method>.json

The proposer finds it by the fingerprint of the model the engine hands it, so a profile is never
applied to a model it was not made for. A missing, mismatched or malformed profile is a
:class:`ProfileError` whose message names the command that makes a good one.

This module imports neither torch nor transformers (:func:`model_fingerprint` imports torch lazily).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "PROFILE_FORMAT",
    "CalibrationRecord",
    "LayerSkipProfile",
    "ProfileError",
    "SkipSet",
    "calibrate_command",
    "default_profile_path",
    "load_profile",
    "model_fingerprint",
    "save_profile",
]

PROFILE_FORMAT = 1
"""The profile file format this version reads and writes. Bump it when a field changes meaning."""

Method = Literal["draft_verify", "swift"]


class ProfileError(ValueError):
    """A layer-skip profile that is missing, malformed or made for another model; the message says how to make one."""


def calibrate_command(method: str, model: str | None = None) -> str:
    return f"specplug layerskip calibrate --model {model or 'MODEL'} --method {method}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SkipSet(_Strict):
    """Sub-layers the draft skips: the attention and/or the MLP block of decoder layers (0-based).

    Draft&Verify and SWIFT both search over attention and MLP blocks separately: a layer whose two
    blocks are skipped is dropped, one with a single block skipped runs the other (its residual
    connection carries the hidden state past the skipped block)."""

    attention: tuple[int, ...] = Field(default=(), description="Layers whose self-attention block is skipped.")
    mlp: tuple[int, ...] = Field(default=(), description="Layers whose MLP block is skipped.")

    @field_validator("attention", "mlp")
    @classmethod
    def _sorted_unique(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(int(v) < 0 for v in value):
            raise ValueError(f"layer ids must be >= 0, got {sorted(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"layer ids repeat: {list(value)}")
        return tuple(sorted(int(v) for v in value))

    def check(self, num_layers: int) -> SkipSet:
        """Raise ``ValueError`` unless every id is a layer of a ``num_layers``-layer model and at
        least one attention block is kept (the draft's KV cache needs one)."""
        bad = [i for i in (*self.attention, *self.mlp) if i >= num_layers]
        if bad:
            raise ValueError(f"skip set names layers {sorted(set(bad))} but the model has {num_layers} (ids 0..{num_layers - 1})")
        if len(self.attention) >= num_layers:
            raise ValueError("the skip set skips every attention block; keep at least one")
        return self

    @property
    def size(self) -> int:
        return len(self.attention) + len(self.mlp)

    def as_mask(self, num_layers: int) -> list[int]:
        """0/1 vector ``[attention_0 .. attention_{L-1}, mlp_0 .. mlp_{L-1}]`` (1 = skipped)."""
        mask = [0] * (2 * num_layers)
        for i in self.attention:
            mask[i] = 1
        for i in self.mlp:
            mask[num_layers + i] = 1
        return mask

    @classmethod
    def from_mask(cls, mask, num_layers: int) -> SkipSet:
        values = [int(v) for v in mask]
        if len(values) != 2 * num_layers:
            raise ValueError(f"a skip mask for {num_layers} layers has {2 * num_layers} entries, got {len(values)}")
        return cls(
            attention=tuple(i for i in range(num_layers) if values[i]),
            mlp=tuple(i for i in range(num_layers) if values[num_layers + i]),
        )

    def describe(self) -> str:
        return f"attention {list(self.attention)}, mlp {list(self.mlp)}"


class CalibrationRecord(_Strict):
    """What the calibration ran on and what it measured (every figure from the command that wrote it)."""

    prompt_source: str = Field(description="Where the calibration prompts came from and which were excluded.")
    prompt_ids: list[str] = Field(description="Spec-Bench question ids used.")
    new_tokens: int = Field(ge=1, description="Greedy tokens generated per calibration prompt.")
    k: int = Field(ge=1, description="Draft tokens per step the search optimised for.")
    objective: str = Field(description="What the search maximised.")
    evaluations: int = Field(ge=0, description="Skip sets the search evaluated.")
    predicted_yield: float = Field(description="The objective's value for the chosen skip set: accepted tokens per target step of overhead.")
    predicted_speedup: float = Field(description="The cost model's speedup for the chosen skip set and threshold.")
    acceptance: float = Field(ge=0, le=1, description="Accepted / drafted tokens measured in the reference engine on the calibration prompts.")
    mat: float = Field(ge=0, description="Tokens per target forward measured in the same run.")
    drafted: int = Field(ge=0)
    accepted: int = Field(ge=0)
    seconds: float = Field(ge=0, description="Wall time of the calibration.")


class LayerSkipProfile(_Strict):
    """A versioned layer-skip profile (see the module docstring)."""

    format_version: int = Field(description=f"File format; this version reads {PROFILE_FORMAT}.")
    method: Method
    model_fingerprint: str = Field(min_length=8, description="model_fingerprint() of the target it was made for.")
    model_name: str = Field(description="The --model value it was calibrated with (for messages).")
    num_layers: int = Field(ge=1)
    skip: SkipSet
    threshold: float = Field(ge=0, lt=1, description="Stop drafting where the draft's confidence falls below this.")
    skip_ratio: float | None = Field(default=None, gt=0, lt=1, description="SWIFT: fraction of sub-layers its on-the-fly search skips.")
    calibration: CalibrationRecord
    vocab_ranking: list[int] = Field(
        default_factory=list, description="Target ids by frequency in the calibration text, most frequent first (reduced draft vocabulary)."
    )
    created: datetime

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value != PROFILE_FORMAT:
            raise ValueError(f"profile format {value} is not the format {PROFILE_FORMAT} this specplug-layerskip reads")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LayerSkipProfile:
        self.skip.check(self.num_layers)
        if self.method == "swift" and self.skip_ratio is None:
            raise ValueError("a swift profile needs skip_ratio")
        return self


def default_profile_path(fingerprint: str, method: str) -> Path:
    from specplug.models import cache_dir

    return cache_dir() / "layerskip" / fingerprint / f"{method}.json"


def save_profile(profile: LayerSkipProfile, path: str | Path | None = None) -> Path:
    """Write ``profile`` (to its default cache path unless ``path`` is given); returns the path."""
    target = Path(path) if path is not None else default_profile_path(profile.model_fingerprint, profile.method)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(profile.model_dump_json(indent=2) + "\n")
    tmp.replace(target)
    return target


def load_profile(method: str, fingerprint: str, path: str | Path | None = None, model_name: str | None = None) -> LayerSkipProfile:
    """The profile for ``method`` and a model with ``fingerprint``: from ``path`` or the cache.

    Raises :class:`ProfileError` naming the file, the problem and the command that makes a profile."""
    fix = calibrate_command(method, model_name)
    where = Path(path).expanduser() if path is not None else default_profile_path(fingerprint, method)
    if not where.exists():
        raise ProfileError(f"no {method} layer-skip profile for this model (looked for {where}). Make one with: {fix}")
    try:
        raw: Any = json.loads(where.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ProfileError(f"layer-skip profile {where} is not readable JSON ({err}). Remake it with: {fix}") from None
    try:
        profile = LayerSkipProfile.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(profile)'}: {e['msg']}" for e in err.errors())
        raise ProfileError(f"layer-skip profile {where} is invalid: {problems}. Remake it with: {fix}") from None
    if profile.method != method:
        raise ProfileError(f"layer-skip profile {where} is a {profile.method} profile, not {method}. Make one with: {fix}")
    if profile.model_fingerprint != fingerprint:
        raise ProfileError(
            f"layer-skip profile {where} was made for another model (fingerprint {profile.model_fingerprint}, "
            f"model {profile.model_name!r}; this model is {fingerprint}). Make one for this model with: {fix}"
        )
    return profile


def model_fingerprint(model) -> str:
    """A short hash identifying a model's architecture and weights, the same for float32 and bfloat16.

    Hashes the config's shape fields and a few thousand weight values (embeddings, the first and
    last layers, the final norm) rounded to bfloat16, so it costs microseconds and a converted or
    re-loaded copy of the same checkpoint gets the same fingerprint."""
    import torch

    config = model.config
    shape = {key: getattr(config, key, None) for key in (
        "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "tie_word_embeddings",
    )}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode())
    inner = model.model
    samples = [
        inner.embed_tokens.weight,
        inner.layers[0].self_attn.q_proj.weight,
        inner.layers[-1].mlp.down_proj.weight,
        inner.norm.weight,
        model.get_output_embeddings().weight,
    ]
    with torch.no_grad():
        for weight in samples:
            flat = weight.detach().reshape(-1)[:4096].to("cpu", torch.bfloat16).to(torch.float32)
            digest.update(flat.numpy().tobytes())
    return digest.hexdigest()[:16]


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
