"""Prompt sets: Spec-Bench (``spec-bench`` or ``spec-bench:N``) and any jsonl file.

Spec-Bench's ``question.jsonl`` (480 prompts in 13 categories, Apache-2.0) is read where it lies,
never copied: ``$SPECPLUG_SPEC_BENCH`` if set, else ``../shared/data/spec_bench/question.jsonl``
beside the checkout or the working directory. ``spec-bench:N`` takes the first N prompts of each
category in file order; only the first turn of each question is used.

A jsonl file has one JSON object per line with the prompt in ``prompt``, ``text`` or ``turns`` (the
first turn), a whole conversation in ``messages`` (``[{"role": "user", "content": ...}, {"role":
"assistant", ...}, ...]``, ending with the user turn to answer; the chat template is applied to it),
or already tokenized in ``token_ids``; optional ``category`` (default ``default``) and ``id`` or
``question_id`` (default: the line number).

Named workloads with repetition across turns and requests (``spec-bench-mt``, ``agentic``; see
:mod:`specplug.bench.workloads`) are built once with the model and cached; ``--prompts NAME``
reads the cached file and names the command that builds it when it is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from specplug.bench.keys import model_key

__all__ = ["WORKLOADS", "Prompt", "PromptError", "load_prompts", "one_per_category_first", "spec_bench_path", "workload_path"]

SPEC_BENCH_ENV = "SPECPLUG_SPEC_BENCH"
DEFAULT_WORKLOAD_MODEL = "smollm2-135m"

#: the named workloads (built by :mod:`specplug.bench.workloads`, read from the cache here)
WORKLOADS = {
    "spec-bench-mt": "second turns of Spec-Bench's 80 MT-bench questions, with the model's own first answer in context",
    "agentic": "revision loops over the model's own code and text, and requests sharing one long instruction block",
}
_REL = Path("shared/data/spec_bench/question.jsonl")


class PromptError(ValueError):
    """A prompt set that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    messages: tuple[tuple[str, str], ...] | None = None  # (role, content) turns of a conversation

    @property
    def fingerprint(self) -> str:
        """A short hash of the prompt's content: a cached result is reused only for the same prompt."""
        content = [self.text, list(self.token_ids) if self.token_ids else None]
        if self.messages:
            content.append([list(m) for m in self.messages])
        payload = json.dumps(content)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def spec_bench_path() -> Path:
    """Where Spec-Bench's question.jsonl is; raises :class:`PromptError` naming where it looked."""
    env = os.environ.get(SPEC_BENCH_ENV)
    if env:
        path = Path(env).expanduser()
        if path.exists():
            return path
        raise PromptError(f"{SPEC_BENCH_ENV}={env} does not exist: point it at Spec-Bench's question.jsonl")
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent / _REL, Path.cwd().parent / _REL, Path.cwd() / _REL]
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise PromptError(f"Spec-Bench prompts not found (looked in {looked}); set {SPEC_BENCH_ENV} to question.jsonl")


def workload_path(name: str, model: str | None = None) -> Path:
    """Where the workload ``name`` built for ``model`` (default SmolLM2) is cached."""
    from specplug.models import cache_dir

    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return cache_dir() / "bench" / "workloads" / f"{name}.{model_key(model or DEFAULT_WORKLOAD_MODEL)}.jsonl"


def _read_jsonl(path: Path) -> list[Prompt]:
    prompts = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise PromptError(f"cannot read prompts from {path}: {err.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise PromptError(f"{path}:{number}: not JSON: {err.msg}") from None
        text = row.get("prompt") or row.get("text") or (row.get("turns") or [None])[0]
        token_ids = row.get("token_ids")
        messages = _messages(row.get("messages"), path, number)
        if not text and not token_ids and not messages:
            raise PromptError(f"{path}:{number}: a prompt needs 'prompt', 'text', 'turns', 'messages' or 'token_ids'")
        prompt_id = str(row.get("id", row.get("question_id", number)))
        prompts.append(
            Prompt(prompt_id, str(row.get("category", "default")), None if messages else text,
                   tuple(int(t) for t in token_ids) if token_ids else None, messages)
        )
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise PromptError(f"{path}: prompt ids repeat; give each line a unique 'id'")
    if not prompts:
        raise PromptError(f"{path}: no prompts")
    return prompts


def _messages(raw, path: Path, number: int) -> tuple[tuple[str, str], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(m, dict) and "role" in m and "content" in m for m in raw):
        raise PromptError(f"{path}:{number}: 'messages' must be a non-empty list of {{\"role\": ..., \"content\": ...}} objects")
    if raw[-1]["role"] != "user":
        raise PromptError(f"{path}:{number}: the last of 'messages' must be the user turn to answer, not {raw[-1]['role']!r}")
    return tuple((str(m["role"]), str(m["content"])) for m in raw)


def load_prompts(spec: str) -> tuple[list[Prompt], str]:
    """Prompts for a ``--prompts`` value, and a label for reports (``spec-bench:1``, a file name)."""
    name, _, count = spec.partition(":")
    if name == "spec-bench":
        per_category = None
        if count:  # checked before the file is looked for: a typo is named even where Spec-Bench is missing
            try:
                per_category = int(count)
            except ValueError:
                raise PromptError(f"'{spec}': the count after 'spec-bench:' must be an integer") from None
            if per_category < 1:
                raise PromptError(f"'{spec}': the count per category must be at least 1")
        prompts = _read_jsonl(spec_bench_path())
        if per_category is not None:
            taken: dict[str, int] = {}
            chosen = []
            for prompt in prompts:
                if taken.get(prompt.category, 0) < per_category:
                    taken[prompt.category] = taken.get(prompt.category, 0) + 1
                    chosen.append(prompt)
            prompts = chosen
        return prompts, spec
    if name in WORKLOADS:
        path = workload_path(name, count or None)
        if not path.exists():
            raise PromptError(
                f"--prompts {spec!r}: the workload is built once with the model; run "
                f"`python -m specplug.bench.workloads build {name}` first (it writes {path})"
            )
        return _read_jsonl(path), spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise PromptError(f"--prompts {spec!r}: no such file; use spec-bench, spec-bench:N, {', '.join(WORKLOADS)} or a jsonl file")
    return _read_jsonl(path), path.name


def one_per_category_first(prompts: list[Prompt]) -> list[Prompt]:
    """The first prompt of every category, then the second of every category, and so on (stable).

    A benchmark that stops early, or takes only the first N prompts, then still covers every category.
    """
    rank: dict[str, int] = {}
    order = []
    for index, prompt in enumerate(prompts):
        rank[prompt.category] = rank.get(prompt.category, 0) + 1
        order.append((rank[prompt.category], index, prompt))
    return [prompt for _, _, prompt in sorted(order, key=lambda item: item[:2])]
