"""What every trained head shares: the target's fingerprint, the metadata file, export, loading.

A head folder is what vLLM loads as a speculator (``config.json`` + ``model.safetensors`` in vLLM's
own layout) plus ``specplug_head.json``, specplug's record of what the head was made for and from:

- ``method`` (the id of the objective that trained it: medusa, eagle, eagle3) and ``format`` (this
  file's version);
- ``target``: the target's fingerprint (:func:`target_fingerprint`), name, layers, hidden size, vocab;
- ``hidden_state_layers``: the target layers the head reads (ids as in
  :data:`specplug.protocols.FINAL_HIDDEN_STATE`: ``-1`` the post-norm state, ``i`` the residual
  stream entering decoder layer ``i``);
- ``draft_vocab_size``; ``data_manifest_id`` (the training data's manifest, see
  :mod:`specplug.train.data`) and ``training`` (steps, tokens, loss, accuracy per position).

vLLM ignores the metadata file; specplug reads it to refuse a head trained for another model.

The API plugins build their heads on (this module imports torch):

- :class:`HeadExport`: the mixin a head module inherits for ``save_pretrained(folder, metadata)``;
  the head defines ``method``, ``vllm_config()``, ``export_state()``, ``from_folder(folder,
  target)``, ``hidden_state_layers`` and ``random_for_target(target, seed, **options)`` (an untrained
  head for tests and smoke runs);
- :class:`HeadMetadata`, :data:`METADATA_FILE`, :class:`HeadMismatchError`,
  :func:`target_fingerprint`, :func:`target_summary`;
- :func:`draft_llama_config` (a head's decoder-layer config from the target's), :func:`as_batch`
  and :func:`default_mask` (the inputs and mask of a head's decoder layer);
- :func:`load_head`, :func:`save_random_head` and :func:`default_head_dir`: the head class of a
  method comes from the objective its plugin registers
  (:attr:`specplug.train.spec.ObjectiveSpec.head_class`), so any registered head loads here.
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
    "as_batch",
    "default_head_dir",
    "default_mask",
    "draft_llama_config",
    "head_class",
    "load_head",
    "save_random_head",
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

    @property
    def held_out_accuracy(self) -> list[float]:
        """Held-out top-1 per draft position, as training measured it (empty when not recorded)."""
        return list(((self.training or {}).get("held_out") or {}).get("accuracy") or ())

    @property
    def first_position_top1(self) -> float | None:
        """Held-out top-1 at the first draft position (None when not recorded)."""
        accuracy = self.held_out_accuracy
        return float(accuracy[0]) if accuracy else None

    def training_summary(self) -> str:
        """One line on how the head was trained, for benchmark pages that use it: a head trained for a few steps
        drafts nothing the target accepts, and a reader of the page must see that rather than guess it."""
        if not self.training:
            return "no training record (a random or imported head)"
        top1 = self.first_position_top1
        return (f"trained {self.training.get('steps')} steps in {self.training.get('seconds')} s on "
                f"{self.training.get('train_sequences')} sequences ({self.training.get('train_response_tokens')} response "
                f"tokens); held-out top-1 at the first draft position "
                + (f"{top1:.1%}" if top1 is not None else "not measured"))

    @classmethod
    def describe(cls, folder: str | Path) -> str:
        """:meth:`training_summary` of the head in ``folder``, or why it has no readable record (benchmark
        pages name the head they used either way, rather than fail after the run)."""
        try:
            return cls.read(Path(folder).expanduser()).training_summary()
        except HeadMismatchError as err:
            return f"no readable training record ({err})"

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

    @classmethod
    def from_folder(cls, folder: str | Path, target):  # pragma: no cover - each head defines it
        """The head saved in ``folder``, built on ``target`` (whose modules it may share)."""
        raise NotImplementedError

    @classmethod
    def random_for_target(cls, target, seed: int = 0, **options):  # pragma: no cover - each head defines it
        """An untrained head for ``target`` with random, non-trivial weights (tests, smoke runs).

        ``options`` are :func:`save_random_head`'s; a head ignores those it does not use."""
        raise NotImplementedError

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


def default_head_dir(fingerprint: str, method: str) -> Path:
    """The folder ``specplug train <method>`` writes for a target: ``<cache>/heads/<fingerprint>/<method>``."""
    from specplug.models import cache_dir

    return cache_dir() / "heads" / fingerprint / method


def head_class(method: str):
    """The head class the plugin of ``method`` registered with its objective.

    Raises :class:`HeadMismatchError` when no installed plugin trains heads for ``method``."""
    from specplug.registry import get_registry

    registry = get_registry()
    spec = registry.objectives.get(method)
    load = getattr(spec, "head_class", None)
    if load is None:
        known = ", ".join(sorted(i for i, s in registry.objectives.items() if s.head_class is not None))
        raise HeadMismatchError(f"unknown head method {method!r}; known: {known}")
    return load()


def load_head(folder: str | Path, target_model, check_target: bool = True):
    """``(head module, HeadMetadata)`` for a head folder, built on ``target_model`` (a transformers
    causal LM: EAGLE heads share its embeddings and LM head). Raises :class:`HeadMismatchError` when
    the folder is not a specplug head or was trained for another model (both fingerprints named)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise HeadMismatchError(f"head folder {folder} does not exist; train one with 'specplug train'")
    metadata = HeadMetadata.read(folder)
    try:
        cls = head_class(metadata.method)
    except HeadMismatchError as err:
        raise HeadMismatchError(f"{folder}: {err}") from None
    if check_target:
        metadata.check_target(target_model, folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).exists():
            raise HeadMismatchError(f"{folder} has no {name}: the head was not saved completely; retrain or re-export it")
    head = cls.from_folder(folder, target_model)
    head.eval()
    return head, metadata


def save_random_head(method: str, model, folder: str | Path, seed: int = 0, draft_vocab: int | None = None,
                     num_heads: int = 3) -> Path:
    """An untrained ``method`` head for ``model`` (random weights) saved in ``folder`` as a trained one is.

    For tests and smoke runs of the pipeline on targets nobody trained a head for. ``draft_vocab``:
    a reduced draft vocabulary's size, for heads that have one (EAGLE-3: a random subset of the
    target's ids; ``None``: the whole vocabulary); ``num_heads``: for heads made of several (Medusa).
    torch's global random state is left as it was.
    """
    cls = head_class(method)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        head = cls.random_for_target(model, seed=seed, draft_vocab=draft_vocab, num_heads=num_heads)
    finally:
        torch.random.set_rng_state(state)
    draft_vocab_size = int(getattr(head, "draft_vocab_size", model.get_output_embeddings().weight.shape[0]))
    metadata = HeadMetadata(method=method, target=target_summary(model), hidden_state_layers=list(head.hidden_state_layers),
                            draft_vocab_size=draft_vocab_size)
    folder = Path(folder)
    head.save_pretrained(folder, metadata)
    return folder
