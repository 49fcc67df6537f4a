"""What every trained head shares: the target's fingerprint, the metadata file, config building.

A head folder is what vLLM loads as a speculator (``config.json`` + ``model.safetensors`` in vLLM's
own layout) plus ``specplug_head.json``, specplug's record of what the head was made for and from:

- ``method`` (medusa, eagle, eagle3) and ``format`` (this file's version);
- ``target``: the target's fingerprint (:func:`target_fingerprint`), name, layers, hidden size, vocab;
- ``hidden_state_layers``: the target layers the head reads (ids as in
  :data:`specplug.protocols.FINAL_HIDDEN_STATE`: ``-1`` the post-norm state, ``i`` the residual
  stream entering decoder layer ``i``);
- ``draft_vocab_size``; ``data_manifest_id`` (the training data's manifest, see
  :mod:`specplug.train.data`) and ``training`` (steps, tokens, loss, accuracy per position).

vLLM ignores the metadata file; specplug reads it to refuse a head trained for another model.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "HeadExport",
    "HeadMetadata",
    "HeadMismatchError",
    "METADATA_FILE",
    "draft_llama_config",
    "target_fingerprint",
    "target_summary",
]

METADATA_FILE = "specplug_head.json"
FORMAT_VERSION = 1

#: config fields that define a target's shape (part of its fingerprint)
_SHAPE_FIELDS = (
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "tie_word_embeddings",
)


class HeadMismatchError(ValueError):
    """A head folder that does not fit the target it is loaded for (or is not a head folder)."""


def target_fingerprint(model) -> str:
    """A short, stable id of a target model: its shape fields plus 64 evenly spaced values of every
    parameter, rounded to bfloat16 (so the same weights loaded in float32 or bfloat16 agree).

    Two checkpoints of one architecture (say, two random seeds) get different fingerprints; hashing
    samples instead of every weight keeps it under a second for a 135M model.
    """
    config = model.config
    digest = hashlib.sha256()
    shape = {name: getattr(config, name, None) for name in _SHAPE_FIELDS}
    digest.update(json.dumps(shape, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
            flat = param.detach().reshape(-1)
            index = torch.linspace(0, flat.numel() - 1, steps=min(64, flat.numel()), dtype=torch.float64).long().to(flat.device)
            sample = flat.index_select(0, index).to("cpu", torch.float32).to(torch.bfloat16)
            digest.update(name.encode())
            digest.update(sample.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()[:16]


def target_summary(model, name: str | None = None) -> dict[str, Any]:
    """The ``target`` entry of a head's metadata."""
    config = model.config
    return {
        "fingerprint": target_fingerprint(model),
        "name": name or getattr(config, "_name_or_path", None) or type(model).__name__,
        "num_layers": int(config.num_hidden_layers),
        "hidden_size": int(config.hidden_size),
        "vocab_size": int(model.get_output_embeddings().weight.shape[0]),
    }


@dataclass
class HeadMetadata:
    """specplug's record of one trained head (``specplug_head.json``)."""

    method: str
    target: dict[str, Any]
    hidden_state_layers: list[int]
    draft_vocab_size: int
    data_manifest_id: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / METADATA_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> HeadMetadata:
        path = Path(folder) / METADATA_FILE
        if not path.exists():
            raise HeadMismatchError(
                f"{folder} is not a specplug head folder (no {METADATA_FILE}); train one with "
                "'specplug train medusa|eagle|eagle3 --model MODEL --data DIR --out DIR'"
            )
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise HeadMismatchError(f"{path}: not JSON ({err.msg}); retrain or re-export the head") from None
        if raw.get("format") != FORMAT_VERSION:
            raise HeadMismatchError(f"{path}: head format {raw.get('format')!r}, this specplug reads {FORMAT_VERSION}; retrain the head")
        known = {k: raw[k] for k in ("method", "target", "hidden_state_layers", "draft_vocab_size",
                                      "data_manifest_id", "training", "extra", "format") if k in raw}
        return cls(**known)

    def check_target(self, model, folder: str | Path = "") -> None:
        """Raise :class:`HeadMismatchError` unless ``model`` is the target this head was trained for."""
        have = target_fingerprint(model)
        want = self.target.get("fingerprint")
        if have != want:
            name = getattr(model.config, "_name_or_path", None) or type(model).__name__
            raise HeadMismatchError(
                f"the {self.method} head in {folder or 'this folder'} was trained for target "
                f"{self.target.get('name')!r} (fingerprint {want}), not for {name!r} (fingerprint {have}); "
                "train a head for this model with 'specplug train data' and 'specplug train "
                f"{self.method}'"
            )


def draft_llama_config(target_config, num_layers: int = 1, **overrides):
    """A LlamaConfig for a head's decoder layers: the target's attention and MLP shapes, ``num_layers``
    layers, SDPA attention (a 4D additive mask gives causal, tree and training-time-test patterns)."""
    from transformers import LlamaConfig

    source = target_config.to_dict() if hasattr(target_config, "to_dict") else dict(target_config)
    keep = {
        key: source[key]
        for key in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
                    "head_dim", "rms_norm_eps", "max_position_embeddings", "hidden_act", "rope_theta",
                    "rope_parameters", "rope_scaling", "attention_bias", "mlp_bias", "bos_token_id", "eos_token_id",
                    "pad_token_id")
        if source.get(key) is not None
    }
    keep.update(num_hidden_layers=num_layers, tie_word_embeddings=False)
    keep.update(overrides)
    config = LlamaConfig(**copy.deepcopy(keep))
    if getattr(config, "rope_theta", None) is None:
        rope = getattr(config, "rope_parameters", None) or {}
        if isinstance(rope, dict) and "rope_theta" in rope:
            config.rope_theta = rope["rope_theta"]
    config._attn_implementation = "sdpa"
    config.architectures = ["LlamaForCausalLM"]
    return config


def as_batch(input_ids: torch.Tensor, features: torch.Tensor, position_ids: torch.Tensor):
    """``[n]``/``[n, F]`` inputs as ``[1, n]``/``[1, n, F]`` (heads also take a batch ``[B, n]``);
    returns the batched tensors and whether the input was unbatched."""
    unbatched = input_ids.dim() == 1
    if unbatched:
        input_ids, features, position_ids = input_ids[None], features[None], position_ids[None]
    return input_ids, features, position_ids, unbatched


def default_mask(attention_mask, past: int, n: int, batch: int, dtype, device):
    """The 4D additive mask a head layer gets: the caller's, or causal over ``past + n`` keys."""
    if attention_mask is not None:
        mask = attention_mask.to(device=device, dtype=dtype)
        while mask.dim() < 4:
            mask = mask[None]
        return mask
    if n == 1:
        return None  # one query sees every cached key
    from specplug.kit.target import causal_bias

    return causal_bias(past, n, dtype, device)[None, None].expand(batch, 1, n, past + n)


class HeadExport:
    """``save_pretrained`` for the head modules: vLLM's files plus specplug's metadata."""

    method: str

    def vllm_config(self) -> dict:  # pragma: no cover - each head defines it
        raise NotImplementedError

    def export_state(self) -> dict[str, torch.Tensor]:  # pragma: no cover - each head defines it
        raise NotImplementedError

    def save_pretrained(self, folder: str | Path, metadata: HeadMetadata) -> Path:
        """Write ``config.json`` and ``model.safetensors`` as vLLM reads them, and ``specplug_head.json``.

        Files are written to a temporary name and renamed, so an interrupted save never leaves a
        half-written head that looks complete."""
        from safetensors.torch import save_file

        if metadata.method != self.method:
            raise ValueError(f"metadata says {metadata.method!r} but this is a {self.method!r} head")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.to("cpu") for name, tensor in self.export_state().items()}
        tmp = folder / "model.safetensors.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps(self.vllm_config(), indent=2, sort_keys=True, default=str) + "\n")
        metadata.save(folder)
        return folder
