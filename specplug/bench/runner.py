"""Run plain decoding and each method on the same prompts, with a cache and a progress bar.

Order of work: in the reference engine, prompt by prompt, each prompt decoded plainly and then by
each method before the next prompt starts, so that load changes on a shared machine hit every method
alike. In vLLM each engine configuration (plain, then each method) runs in its own subprocess
(:mod:`specplug.integrations.vllm.worker`), one prompt at a time (batch 1, as Spec-Bench measures).

Cache: every finished (prompt, method) is appended to a jsonl file keyed by engine, model, method
(with its plugin version, options and verifier), k, max_new_tokens and temperature, under
``--cache-dir`` (default ``$SPECPLUG_CACHE/bench``). A rerun with the same settings skips what is
there, so an interrupted run resumes; a prompt whose text changed is run again (each line carries a
fingerprint of its prompt).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specplug.bench.metrics import BASELINE, PromptRecord
from specplug.bench.prompts import Prompt, load_prompts
from specplug.bench.keys import model_key, short_hash, slug
from specplug.bench.results import BenchResults

__all__ = ["BenchConfig", "BenchError", "ResultCache", "encode", "hardware", "run_bench", "run_meta"]

NATIVE_SUFFIX = "@native"


class BenchError(RuntimeError):
    """A benchmark that cannot run; the message names the problem and the fix."""


@dataclass
class BenchConfig:
    """What to run. ``methods`` excludes plain decoding, which always runs as the baseline."""

    methods: list[str]
    engine: str = "reference"
    model: str = "smollm2-135m"
    prompts: str = "spec-bench:1"
    k: int = 5
    max_new_tokens: int = 128
    temperature: float = 0.0
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    verifier: str | None = None
    chat: bool = True  # apply the model's chat template to text prompts
    use_cache: bool = True
    cache_dir: Path | None = None
    seed: int = 0
    title: str | None = None
    command: str | None = None
    threads: int | None = None  # torch CPU threads (reference engine); None keeps torch's default

    def check(self) -> None:
        if self.engine not in {"reference", "vllm"}:
            raise BenchError(f"--engine {self.engine!r}: use 'reference' or 'vllm'")
        if self.k < 1:
            raise BenchError(f"--k must be at least 1, got {self.k}")
        if self.max_new_tokens < 1:
            raise BenchError(f"--max-new-tokens must be at least 1, got {self.max_new_tokens}")
        if self.threads is not None and self.threads < 1:
            raise BenchError(f"--threads must be at least 1, got {self.threads}")
        if self.temperature < 0:
            raise BenchError(f"--temperature must be >= 0, got {self.temperature}")
        if len(set(self.methods)) != len(self.methods):
            raise BenchError(f"--methods repeats a method: {','.join(self.methods)}")
        if BASELINE in self.methods:
            raise BenchError(f"'{BASELINE}' always runs as the baseline; leave it out of --methods")
        if self.engine == "reference" and any(m.endswith(NATIVE_SUFFIX) for m in self.methods):
            raise BenchError(f"methods ending in {NATIVE_SUFFIX} run vLLM's own implementation: use --engine vllm")


# -- cache ------------------------------------------------------------------------------------------


class ResultCache:
    """Finished prompts of one (engine, model, method, settings), as a jsonl file."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupted write
                self.entries[row["prompt_id"]] = row

    def get(self, prompt: Prompt) -> PromptRecord | None:
        row = self.entries.get(prompt.id)
        if row is None or row.get("fingerprint") != prompt.fingerprint:
            return None
        return PromptRecord.from_json(row["record"])

    def put(self, prompt: Prompt, record: PromptRecord) -> None:
        row = {"prompt_id": prompt.id, "fingerprint": prompt.fingerprint, "record": record.to_json()}
        self.entries[prompt.id] = row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


def _cache_path(cfg: BenchConfig, method: str, method_key: Any) -> Path | None:
    if not cfg.use_cache:
        return None
    from specplug.models import cache_dir

    root = cfg.cache_dir or cache_dir() / "bench"
    settings = {"k": cfg.k, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
                "chat": cfg.chat, "seed": cfg.seed, "method": method_key}
    if cfg.threads is not None:  # timings with another thread count are not comparable
        settings["threads"] = cfg.threads
    if method == BASELINE:
        settings.pop("k")
        settings.pop("method")
    name = f"{slug(method)}-k{cfg.k}-n{cfg.max_new_tokens}-{short_hash(settings)}.jsonl"
    return root / cfg.engine / model_key(cfg.model) / name


# -- tokenization -----------------------------------------------------------------------------------


def encode(prompt: Prompt, tokenizer: Any, chat: bool) -> list[int]:
    """Token ids of a prompt: given ids as they are, text through the chat template unless ``chat`` is off."""
    if prompt.token_ids:
        return list(prompt.token_ids)
    if tokenizer is None:
        raise BenchError(f"prompt {prompt.id} is text but the model has no tokenizer: give 'token_ids' in the jsonl")
    if prompt.messages:
        if not getattr(tokenizer, "chat_template", None):
            raise BenchError(f"prompt {prompt.id} is a conversation ('messages') but the model has no chat template")
        turns = [{"role": role, "content": content} for role, content in prompt.messages]
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer is None:
        raise BenchError(f"prompt {prompt.id} is text but the model has no tokenizer: give 'token_ids' in the jsonl")
    if chat and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt.text}], tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt.text)["input_ids"])


# -- metadata ---------------------------------------------------------------------------------------


def hardware() -> str:
    """A short description of the machine: CPU model and cores, and the GPU if one is used."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores visible"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def run_meta(cfg: BenchConfig, label: str, prompts: list[Prompt], extra: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a results document: the run's settings, prompts, machine and date, plus ``extra``."""
    from specplug import __version__

    meta = {
        "title": cfg.title,
        "model": cfg.model,
        "engine": cfg.engine,
        "prompts": label,
        "num_prompts": len(prompts),
        "categories": sorted({p.category for p in prompts}, key=[p.category for p in prompts].index),
        "k": cfg.k,
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "verifier": cfg.verifier,
        "chat_template": cfg.chat,
        "hardware": hardware(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "specplug_version": __version__,
        "python": platform.python_version(),
        "command": cfg.command,
    }
    meta.update(extra)
    return {k: v for k, v in meta.items() if v is not None}


# -- progress ---------------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar with ETA on stderr (quiet when ``enabled`` is false)."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled and total > 0
        self._progress = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]bench[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task("", total=total)
            self._progress.start()

    def advance(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=description)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


# -- reference engine -------------------------------------------------------------------------------


def _reference_records(
    cfg: BenchConfig, prompts: list[Prompt], progress: _Progress, model: Any, tokenizer: Any, registry: Any
) -> tuple[list[PromptRecord], dict[str, Any]]:
    from specplug.engine.engine import ReferenceEngine
    from specplug.protocols import SamplingParams

    specs = {}
    for method in cfg.methods:
        spec = registry.method(method)  # raises naming the nearest ids or the package to install
        if spec.max_k is not None and cfg.k > spec.max_k:
            raise BenchError(f"method {method!r} drafts at most {spec.max_k} tokens per step; use --k {spec.max_k} or less")
        specs[method] = spec
    proposers = {m: s.build(cfg.options.get(m)) for m, s in specs.items()}
    caches = {BASELINE: ResultCache(_cache_path(cfg, BASELINE, None))}
    for method, spec in specs.items():
        key = [registry.method_sources.get(method), cfg.options.get(method), cfg.verifier]
        caches[method] = ResultCache(_cache_path(cfg, method, key))

    import torch

    if cfg.threads is not None:
        # On a small shared machine one thread per process avoids OpenMP threads spinning against each
        # other (measured here under load: 0.52 s per SmolLM2 forward with 1 thread, 1.23 s with 2).
        torch.set_num_threads(cfg.threads)
    if model is None:
        from specplug.models import load_model

        model, tokenizer = load_model(cfg.model)

    param = next(model.parameters())
    engine = ReferenceEngine(model, tokenizer)
    sampling = SamplingParams(temperature=cfg.temperature)
    ids = {p.id: encode(p, tokenizer, cfg.chat) for p in prompts}

    records: list[PromptRecord] = []
    warmed = False
    resumed = 0
    for prompt in prompts:
        for method in [BASELINE, *cfg.methods]:
            cached = caches[method].get(prompt)
            if cached is not None:
                records.append(cached)
                resumed += 1
                progress.advance(f"{prompt.category} {method} (cached)")
                continue
            if not warmed:  # the first forward pays one-off allocation costs; keep them out of the figures
                engine.generate([ids[prompt.id]], None, cfg.verifier, k=cfg.k, max_new_tokens=2, sampling=sampling, seed=cfg.seed)
                warmed = True
            proposer = proposers.get(method)
            with torch.inference_mode():
                result = engine.generate(
                    [ids[prompt.id]], proposer, cfg.verifier, k=cfg.k, max_new_tokens=cfg.max_new_tokens,
                    sampling=sampling, seed=cfg.seed,
                )[0]
            s = result.stats
            record = PromptRecord(
                prompt_id=prompt.id, category=prompt.category, method=method, new_tokens=s.new_tokens, steps=s.steps,
                drafted=s.drafted, accepted=s.accepted, seconds=s.wall_s, draft_s=s.draft_s, verify_s=s.verify_s,
                output_ids=list(result.token_ids),
            )
            caches[method].put(prompt, record)
            records.append(record)
            progress.advance(f"{prompt.category} {method}")
    extra = {
        "dtype": str(param.dtype).replace("torch.", ""),
        "device": str(param.device),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "resumed_from_cache": resumed,
    }
    return records, extra


# -- vLLM -------------------------------------------------------------------------------------------


def _vllm_speculative_config(method: str, cfg: BenchConfig) -> tuple[dict, dict, dict]:
    """``(speculative_config, additional_config, env)`` for a method id or ``<id>@native``."""
    from specplug.integrations.vllm.commands import speculative_configs

    base, native = (method[: -len(NATIVE_SUFFIX)], True) if method.endswith(NATIVE_SUFFIX) else (method, False)
    configs = speculative_configs(base, cfg.k, cfg.options.get(method) or None)
    key = "native" if native else "specplug"
    if key not in configs:
        other = f"'{base}'" if native else f"'{base}{NATIVE_SUFFIX}'"
        raise BenchError(f"{method!r} has no {'native vLLM' if native else 'specplug'} implementation; try {other}")
    entry = configs[key]
    return entry["speculative_config"], entry.get("additional_config") or {}, entry.get("env") or {}


def _vllm_records(cfg: BenchConfig, prompts: list[Prompt], progress: _Progress) -> tuple[list[PromptRecord], dict[str, Any]]:
    from specplug.integrations.vllm.jobs import VllmJobError, run_job
    from specplug.models import resolve_model

    model_path = resolve_model(cfg.model)
    tokenizer = None
    if any(p.token_ids is None for p in prompts):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path)
    ids = {p.id: encode(p, tokenizer, cfg.chat) for p in prompts}
    jobs = [(BASELINE, None, {}, {})] + [(m, *_vllm_speculative_config(m, cfg)) for m in cfg.methods]
    records: list[PromptRecord] = []
    resumed = 0
    versions: dict[str, Any] = {}
    for method, spec_config, additional, env in jobs:
        cache = ResultCache(_cache_path(cfg, method, [spec_config, additional]))
        pending = []
        for prompt in prompts:
            cached = cache.get(prompt)
            if cached is None:
                pending.append(prompt)
            else:
                records.append(cached)
                resumed += 1
                progress.advance(f"{prompt.category} {method} (cached)")
        if not pending:
            continue
        job = {
            "mode": "timed", "model": model_path, "speculative_config": spec_config, "additional_config": additional,
            "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "seed": cfg.seed,
            "prompts": [{"id": p.id, "category": p.category, "token_ids": ids[p.id]} for p in pending],
        }
        by_id = {p.id: p for p in pending}

        def take(row: dict[str, Any], method: str = method, cache: ResultCache = cache) -> None:
            nonlocal versions
            if "versions" in row:
                versions = row["versions"]
                return
            record = PromptRecord.from_json({**row, "method": method})
            cache.put(by_id[record.prompt_id], record)
            records.append(record)
            progress.advance(f"{record.category} {method} (vLLM)")

        try:
            run_job(job, env=env, on_line=take)  # one record per finished prompt
        except VllmJobError as err:
            raise BenchError(f"the vLLM worker for {method!r} failed: {err}") from None
    extra = {"dtype": "float32", "device": "cpu", "resumed_from_cache": resumed, **versions}
    return records, extra


# -- entry points -----------------------------------------------------------------------------------


def run_bench(
    cfg: BenchConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    registry: Any = None,
    show_progress: bool = True,
    prompts: list[Prompt] | None = None,
    label: str | None = None,
) -> BenchResults:
    """Run the benchmark and return its results (nothing is written but the cache).

    ``model`` / ``tokenizer`` (reference engine only) replace loading ``cfg.model``; ``registry``
    replaces the process registry (tests register their own methods); ``prompts`` replaces reading
    ``cfg.prompts``.
    """
    cfg.check()
    if prompts is None:
        prompts, label = load_prompts(cfg.prompts)
    label = label or cfg.prompts
    if registry is None:
        from specplug.registry import get_registry

        registry = get_registry()
    progress = _Progress(len(prompts) * (1 + len(cfg.methods)), show_progress)
    started = time.perf_counter()
    try:
        if cfg.engine == "reference":
            records, extra = _reference_records(cfg, prompts, progress, model, tokenizer, registry)
        else:
            records, extra = _vllm_records(cfg, prompts, progress)
    finally:
        progress.close()
    extra["run_seconds"] = round(time.perf_counter() - started, 1)
    meta = run_meta(cfg, label, prompts, extra)
    return BenchResults.build(meta, [BASELINE, *cfg.methods], records)
