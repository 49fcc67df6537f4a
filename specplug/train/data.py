"""``specplug train data``: self-distilled training data for the heads, in resumable shards.

Two stages, each resumable after an interruption:

1. **Responses.** The target's own greedy answers to the training prompts (:mod:`specplug.train.prompts`:
   Spec-Bench without the prompts the benchmarks use), in the target's chat template. Generated in
   vLLM (CPU; one engine per process through :mod:`specplug.integrations.vllm.jobs`,
   ``--chunk-size`` prompts per engine) or in the reference engine (one prompt at a time). Each
   finished answer is appended to ``responses.jsonl``; a rerun generates only the missing ones.
2. **Hidden states.** A teacher-forced transformers forward over prompt + response gives the target's
   hidden states at every layer a head reads (``-1``: the final post-norm state, Medusa's and EAGLE's
   feature; ``i``: the residual stream entering layer ``i``, EAGLE-3's low/mid/high = vLLM's default
   ``(2, L // 2, L - 3)``); by default ``-1`` and the layers the registered objectives ask for
   (:func:`objectives_layers`). ``--shard-size`` sequences per ``shard-NNNNN.safetensors`` (tensors
   ``tokens`` [T] int64, ``offsets`` [n + 1], ``prompt_lens`` [n], ``states.<layer>`` [T, H]); a shard
   is written under a temporary name and renamed, and a rerun skips the shards that exist.

``manifest.json`` records the model fingerprint, the prompt set and ids, the generation settings, the
layers, the shards and the token counts; its ``id`` (a hash of everything that decides the data's
content) is copied into every head trained on it. A rerun with other settings into the same folder is
refused (use another ``--out``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DataConfig", "DataError", "build_data", "objectives_layers", "read_manifest", "MANIFEST"]

MANIFEST = "manifest.json"
RESPONSES = "responses.jsonl"
FORMAT_VERSION = 1


class DataError(ValueError):
    """Training data that cannot be made or used; the message names the fix."""


@dataclass
class DataConfig:
    model: str = "smollm2-135m"
    out: str | None = None
    prompts: str = "spec-bench-train"
    limit: int | None = None
    exclude_per_category: int = 5
    max_new_tokens: int = 256
    max_prompt_tokens: int = 1024
    layers: list[int] | None = None  # default: [-1] + EAGLE-3's (2, L // 2, L - 3)
    engine: str = "vllm"
    chunk_size: int = 128
    shard_size: int = 16
    dtype: str = "bfloat16"
    quiet: bool = False
    extra: dict = field(default_factory=dict)


def default_data_dir(fingerprint: str) -> Path:
    from specplug.models import cache_dir

    return cache_dir() / "train-data" / fingerprint


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise DataError(f"{folder} holds no training data (no {MANIFEST}); make it with 'specplug train data --out {folder}'")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: data format {manifest.get('format')!r}, this specplug reads {FORMAT_VERSION}; remake the data")
    return manifest


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _chat_ids(tokenizer, text: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text)["input_ids"])


def _read_responses(path: Path) -> dict[str, list[int]]:
    done: dict[str, list[int]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interruption: generated again
            done[str(row["id"])] = [int(t) for t in row["response"]]
    return done


def _generate_vllm(location: str, prompts: list[list[int]], cfg: DataConfig) -> list[list[int]]:
    """Greedy responses from one vLLM engine in its own process (a ``generate`` job of :mod:`specplug.integrations.vllm.worker`)."""
    from specplug.integrations.vllm.jobs import VllmJobError, job_result

    job = {"model": location, "prompts": prompts, "max_tokens": cfg.max_new_tokens, "ignore_eos": False,
           "max_model_len": cfg.max_prompt_tokens + cfg.max_new_tokens + 8, "max_num_seqs": 32}
    try:
        result = job_result(job, env={"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")},
                            share_plain=False)
    except VllmJobError as err:
        raise DataError(f"the vLLM engine failed (use --engine reference to generate without vLLM):\n{str(err)[-3000:]}") from None
    return [list(map(int, out)) for out in result["outputs"]]


def _load_target(spec: str):
    import torch

    from specplug.models import load_model

    model, tokenizer = load_model(spec, dtype=torch.float32, device="cpu")
    model.requires_grad_(False)
    return model, tokenizer


def objectives_layers(num_layers: int) -> list[int]:
    """The hidden-state layers the data keeps by default: the final state (``-1``) and every layer a
    registered objective asks for (:attr:`~specplug.train.spec.ObjectiveSpec.data_layers`), in order."""
    from specplug.registry import get_registry

    wanted = {-1}
    for spec in get_registry().objectives.values():
        if spec.data_layers is not None:
            wanted.update(int(layer) for layer in spec.data_layers(num_layers))
    return sorted(wanted)


def build_data(cfg: DataConfig, log=print) -> Path:
    """Make (or finish) the training data folder for ``cfg``; returns it."""
    import torch
    from safetensors.torch import save_file

    from specplug.kit.heads import target_fingerprint
    from specplug.models import resolve_model
    from specplug.train.progress import progress_bar
    from specplug.train.prompts import training_prompts

    if cfg.engine not in ("vllm", "reference"):
        raise DataError(f"--engine {cfg.engine!r}: use vllm or reference")
    location = resolve_model(cfg.model)
    model, tokenizer = _load_target(cfg.model)
    fingerprint = target_fingerprint(model)
    num_layers = int(model.config.num_hidden_layers)
    layers = list(cfg.layers) if cfg.layers else objectives_layers(num_layers)
    for layer in layers:
        if not (layer == -1 or 0 <= layer < num_layers):
            raise DataError(f"--layers: layer {layer} does not exist; use -1 (final) or 0..{num_layers - 1}")
    out = Path(cfg.out).expanduser() if cfg.out else default_data_dir(fingerprint)
    out.mkdir(parents=True, exist_ok=True)

    prompts, prompt_set = training_prompts(cfg.prompts, cfg.limit, cfg.exclude_per_category)
    encoded, skipped = [], []
    for prompt in prompts:
        ids = list(prompt.token_ids) if prompt.token_ids else _chat_ids(tokenizer, prompt.text)
        (encoded if len(ids) <= cfg.max_prompt_tokens else skipped).append((prompt.id, ids))
    if not encoded:
        raise DataError(f"every prompt is longer than --max-prompt-tokens {cfg.max_prompt_tokens}")
    prompt_set = dict(prompt_set, ids=[pid for pid, _ in encoded], skipped_too_long=[pid for pid, _ in skipped])
    generation = {"engine": cfg.engine, "temperature": 0.0, "max_new_tokens": cfg.max_new_tokens,
                  "max_prompt_tokens": cfg.max_prompt_tokens, "chat_template": bool(getattr(tokenizer, "chat_template", None)),
                  "stop": "eos"}
    identity = {"fingerprint": fingerprint, "prompts": prompt_set, "generation": generation, "layers": layers,
                "dtype": cfg.dtype, "shard_size": cfg.shard_size}
    data_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if old.get("id") != data_id:
            raise DataError(f"{out} already holds training data made with other settings (manifest id {old.get('id')}, "
                            f"these settings give {data_id}); use another --out or delete the folder")
    manifest = {"format": FORMAT_VERSION, "id": data_id, "complete": False,
                "model": {"fingerprint": fingerprint, "name": str(cfg.model), "location": location,
                          "num_layers": num_layers, "hidden_size": int(model.config.hidden_size),
                          "vocab_size": int(model.get_output_embeddings().weight.shape[0])},
                "prompts": prompt_set, "generation": generation, "layers": layers, "dtype": cfg.dtype,
                "shard_size": cfg.shard_size, "shards": [], "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(manifest_path, manifest)
    if skipped:
        log(f"skipped {len(skipped)} prompts longer than {cfg.max_prompt_tokens} tokens")

    # -- stage 1: responses --------------------------------------------------------------------
    responses_path = out / RESPONSES
    done = _read_responses(responses_path)
    todo = [(pid, ids) for pid, ids in encoded if pid not in done]
    started = time.monotonic()
    if todo:
        log(f"generating {len(todo)} responses ({len(done)} already done) with {cfg.engine}, up to {cfg.max_new_tokens} tokens each")
        with progress_bar("responses", len(encoded), "prompts", cfg.quiet) as advance, responses_path.open("a") as sink:
            advance(len(done))
            if cfg.engine == "vllm":
                for start in range(0, len(todo), cfg.chunk_size):
                    chunk = todo[start : start + cfg.chunk_size]
                    for (pid, _), response in zip(chunk, _generate_vllm(location, [ids for _, ids in chunk], cfg)):
                        sink.write(json.dumps({"id": pid, "response": response}) + "\n")
                        done[pid] = response
                    sink.flush()
                    advance(len(chunk))
            else:
                from specplug.engine import ReferenceEngine

                engine = ReferenceEngine(model, tokenizer)
                for pid, ids in todo:
                    response = engine.generate([ids], max_new_tokens=cfg.max_new_tokens)[0].token_ids
                    sink.write(json.dumps({"id": pid, "response": [int(t) for t in response]}) + "\n")
                    sink.flush()
                    done[pid] = list(response)
                    advance(1)
    generate_s = time.monotonic() - started

    # -- stage 2: hidden states, in shards ----------------------------------------------------
    dtype = getattr(torch, cfg.dtype)
    sequences = [(pid, ids, done[pid]) for pid, ids in encoded]
    shards = []
    total_tokens = sum(len(ids) + len(resp) for _, ids, resp in sequences)
    started = time.monotonic()
    with progress_bar("hidden states", total_tokens, "tokens", cfg.quiet) as advance:
        for number, start in enumerate(range(0, len(sequences), cfg.shard_size)):
            part = sequences[start : start + cfg.shard_size]
            name = f"shard-{number:05d}.safetensors"
            tokens_here = sum(len(ids) + len(resp) for _, ids, resp in part)
            entry = {"file": name, "sequences": len(part), "tokens": tokens_here,
                     "response_tokens": sum(len(resp) for _, _, resp in part), "ids": [pid for pid, _, _ in part]}
            shards.append(entry)
            if (out / name).exists():
                advance(tokens_here)
                continue
            all_tokens, offsets, prompt_lens, states = [], [0], [], {layer: [] for layer in layers}
            with torch.inference_mode():
                for _, ids, resp in part:
                    seq = ids + resp
                    hidden = model(input_ids=torch.tensor([seq]), output_hidden_states=True).hidden_states
                    for layer in layers:
                        states[layer].append(hidden[layer][0].to(dtype))
                    all_tokens.extend(seq)
                    offsets.append(len(all_tokens))
                    prompt_lens.append(len(ids))
                    advance(len(seq))
            tensors = {"tokens": torch.tensor(all_tokens, dtype=torch.long), "offsets": torch.tensor(offsets, dtype=torch.long),
                       "prompt_lens": torch.tensor(prompt_lens, dtype=torch.long)}
            tensors.update({f"states.{layer}": torch.cat(states[layer]).contiguous() for layer in layers})
            tmp = out / (name + ".tmp")
            save_file(tensors, str(tmp), metadata={"data_id": data_id})
            tmp.replace(out / name)
            manifest["shards"] = list(shards)
            _write_json(manifest_path, manifest)
    manifest.update(shards=shards, complete=True, tokens=total_tokens,
                    response_tokens=sum(len(resp) for _, _, resp in sequences), sequences=len(sequences),
                    seconds={"responses": round(generate_s, 1), "hidden_states": round(time.monotonic() - started, 1)},
                    bytes=sum((out / s["file"]).stat().st_size for s in shards))
    _write_json(manifest_path, manifest)
    log(f"training data: {out} ({len(sequences)} sequences, {total_tokens} tokens of which "
        f"{manifest['response_tokens']} generated, layers {layers}, {manifest['bytes'] / 1e6:.1f} MB, id {data_id})")
    return out


def config_dict(cfg: DataConfig) -> dict:
    return asdict(cfg)
