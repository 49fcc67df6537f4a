"""Derived draft models: a subset of a model's decoder layers saved as a plain Hugging Face folder.

``specplug models derive BASE --layers SPEC`` writes such a folder. SmolLM2 has no published
smaller sibling with its tokenizer, so a draft model for it (Leviathan et al.'s independent
drafter, ``sps``) is the base with most layers removed: the embeddings, the final norm and the LM
head stay (tied embeddings stay tied), the kept layers are renumbered ``0 .. n-1``. Both loaders
read the folder: transformers (``AutoModelForCausalLM``) and vLLM (``"method": "draft_model"``).

- :func:`parse_layers`: ``"0-3,29"`` -> ``[0, 1, 2, 3, 29]``, checked against the base's layer count.
- :func:`model_fingerprint`: a hash of a folder's config and weights (what a derived folder, and
  any cache entry made from a model, is keyed by).
- :func:`derive_model`: writes the folder (default: under ``$SPECPLUG_CACHE/models/derived/``).

Weights are copied tensor by tensor with safetensors (no model is built), so deriving from
SmolLM2 takes a second or two and as much memory as the tensors kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["DeriveError", "default_out_dir", "derive_model", "layers_label", "model_fingerprint", "parse_layers"]

#: Architectures whose layers can be dropped without touching per-layer config (``model.layers.<i>.``).
LLAMA_STYLE = ("llama", "mistral")
#: Files copied from the base beside the weights (tokenizer and generation settings).
AUX_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
             "generation_config.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json")
#: Substrings vLLM reads in a draft's path to switch to another method (vllm/config/speculative.py, 0.32).
VLLM_METHOD_TRIGGERS = ("eagle-", "eagle3", "dflash", "dspark")
RECORD_FILE = "specplug-derived.json"
_DONE_MARKER = ".specplug-complete"
_LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


class DeriveError(ValueError):
    """A derivation that cannot be done; the message names the problem and the fix."""


def parse_layers(spec: str, num_layers: int) -> list[int]:
    """Layer ids of a ``--layers`` value: comma-separated ids and inclusive ranges (``0-3,29``),
    sorted; each in ``[0, num_layers)``, none twice."""
    text = str(spec).replace(" ", "")
    if not text:
        raise DeriveError(f"--layers is empty: give layer ids and ranges such as 0-3,{num_layers - 1}")
    layers: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise DeriveError(f"--layers {spec!r}: {part!r} is not a layer id or a range a-b (example: 0-3,{num_layers - 1})")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise DeriveError(f"--layers {spec!r}: range {part!r} runs backwards; write {last}-{first}")
        layers.extend(range(first, last + 1))
    outside = sorted({i for i in layers if i >= num_layers})
    if outside:
        raise DeriveError(f"--layers {spec!r}: layer {outside[0]} is out of range; the model has {num_layers} layers (0-{num_layers - 1})")
    repeated = sorted({i for i in layers if layers.count(i) > 1})
    if repeated:
        raise DeriveError(f"--layers {spec!r}: layer {repeated[0]} is given twice")
    return sorted(layers)


def layers_label(layers: list[int]) -> str:
    """A compact, path-safe label: ``[0, 1, 2, 3, 29]`` -> ``0-3_29``."""
    runs: list[str] = []
    start = prev = None
    for i in layers + [None]:  # type: ignore[operator]
        if start is not None and (i is None or i != prev + 1):
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return "_".join(runs)


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    single = folder / "model.safetensors"
    if single.exists():
        return [single]
    raise DeriveError(f"{folder} has no safetensors weights (model.safetensors or an index); derive reads safetensors folders only")


def model_fingerprint(folder: str | os.PathLike) -> str:
    """``sha256:<hex>`` over a model folder's config.json and weight files (names and bytes).

    Reads every weight byte once (SmolLM2-135M float32: about a second)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    digest.update((folder / "config.json").read_bytes())
    for path in _weight_files(folder):
        digest.update(f"|{path.name}|".encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def _base_folder(base: str | os.PathLike) -> Path:
    from specplug.models import resolve_model

    location = Path(resolve_model(base))
    if not location.is_dir():
        raise DeriveError(f"cannot derive from {str(base)!r}: not a local model folder (use smollm2-135m or a folder with config.json and safetensors)")
    return location


def _base_config(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text())
    model_type = config.get("model_type")
    if model_type not in LLAMA_STYLE or not isinstance(config.get("num_hidden_layers"), int):
        raise DeriveError(
            f"{folder} is a {model_type!r} model; derive keeps a subset of layers only for Llama-style models "
            f"({', '.join(LLAMA_STYLE)}: decoder layers model.layers.<i> with no per-layer settings)"
        )
    return config


def default_out_dir(base: str | os.PathLike, layers: list[int], fingerprint: str | None = None) -> Path:
    """``$SPECPLUG_CACHE/models/derived/<base name>-layers-<label>-<fingerprint[:12]>``."""
    from specplug.models import cache_dir

    folder = _base_folder(base)
    fingerprint = fingerprint or model_fingerprint(folder)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name)
    return cache_dir() / "models" / "derived" / f"{name}-layers-{layers_label(layers)}-{fingerprint.split(':')[-1][:12]}"


def _check_vllm_path(out: Path) -> None:
    lowered = str(out).lower()
    hit = next((t for t in VLLM_METHOD_TRIGGERS if t in lowered), None)
    if hit:
        raise DeriveError(
            f"output folder {out} contains {hit!r}, which makes vLLM load it as another method than draft_model; "
            "choose an --out path without it"
        )


def derive_model(
    base: str | os.PathLike, layers: str | list[int], out: str | os.PathLike | None = None, dtype: str | None = None
) -> Path:
    """Write the folder holding ``layers`` of ``base`` (a ``--model`` value) and return its path.

    ``layers``: a ``--layers`` string or a list of ids. ``out`` defaults to :func:`default_out_dir`; an
    existing folder made from the same base and layers is reused, any other existing folder is an
    error. ``dtype`` (``float32``, ``bfloat16``, ``float16``) converts the weights; default: as stored.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = _base_folder(base)
    config = _base_config(folder)
    total = int(config["num_hidden_layers"])
    keep = parse_layers(layers, total) if isinstance(layers, str) else parse_layers(",".join(str(int(i)) for i in layers), total)
    target_dtype = None
    if dtype is not None:
        target_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(str(dtype))
        if target_dtype is None:
            raise DeriveError(f"--dtype {dtype!r}: use float32, bfloat16 or float16")
    fingerprint = model_fingerprint(folder)
    out_dir = Path(out).expanduser() if out is not None else default_out_dir(folder, keep, fingerprint)
    _check_vllm_path(out_dir.resolve())
    record = {"format": 1, "base": str(folder), "base_fingerprint": fingerprint, "base_num_layers": total,
              "layers": keep, "dtype": dtype or config.get("dtype") or config.get("torch_dtype")}
    if out_dir.exists():
        existing = out_dir / RECORD_FILE
        if (out_dir / _DONE_MARKER).exists() and existing.exists():
            old = json.loads(existing.read_text())
            if all(old.get(key) == record[key] for key in ("base_fingerprint", "layers", "dtype")):
                return out_dir
        if any(out_dir.iterdir()):
            raise DeriveError(f"{out_dir} exists and holds something else; delete it or choose another --out")

    renumber = {old: new for new, old in enumerate(keep)}
    tensors: dict[str, torch.Tensor] = {}
    for path in _weight_files(folder):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                match = _LAYER_KEY.match(key)
                if match is None:
                    name = key  # embeddings, final norm, head
                elif int(match.group(1)) in renumber:
                    name = f"model.layers.{renumber[int(match.group(1))]}.{match.group(2)}"
                else:
                    continue
                tensor = fh.get_tensor(key)
                tensors[name] = tensor.to(target_dtype) if target_dtype is not None else tensor
    kept = {int(m.group(1)) for m in (_LAYER_KEY.match(k) for k in tensors) if m}
    if kept != set(range(len(keep))):
        raise DeriveError(f"{folder}: weights of layers {sorted(set(range(len(keep))) - kept)} (renumbered) not found; is the folder complete?")

    new_config = dict(config)
    new_config["num_hidden_layers"] = len(keep)
    for key in ("_name_or_path", "_model_name_or_path"):
        new_config.pop(key, None)
    if dtype is not None:
        new_config["dtype"] = str(dtype)
        new_config.pop("torch_dtype", None)
    rope = new_config.get("rope_parameters") or {}
    if "rope_theta" not in new_config and isinstance(rope, dict) and "rope_theta" in rope:
        new_config["rope_theta"] = rope["rope_theta"]  # vLLM reads it at the top level

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".derive-", dir=out_dir.parent))
    try:
        save_file(tensors, str(work / "model.safetensors"), metadata={"format": "pt"})
        (work / "config.json").write_text(json.dumps(new_config, indent=2, sort_keys=True) + "\n")
        for name in AUX_FILES:
            if (folder / name).exists():
                shutil.copy(folder / name, work / name)
        (work / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        (work / _DONE_MARKER).write_text("ok\n")
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir
