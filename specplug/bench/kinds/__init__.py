"""Suite kinds: the benchmarks ``specplug bench --suite FILE`` runs besides plain ``bench``.

Each kind is one module here with up to three functions:

- ``run(suite, quick, out_dir) -> written paths``: the benchmark, reading its settings from the
  suite's ``[bench]`` table (``[quick]`` overrides them for a smoke run);
- ``render(results, heading) -> lines``: the markdown of the document's ``extra`` section (figures
  that are not per-prompt decoding counts: goals, cost splits, per-step times, quality);
- ``convert(legacy, path) -> {stem: BenchResults}``: the documents of a results file its old
  bespoke script wrote (see :mod:`specplug.bench.kinds.legacy`).

Modules import neither torch nor vllm at import time: the runners import what they need lazily,
and only :mod:`specplug.integrations.vllm` (through the worker processes) imports vllm.
"""

from __future__ import annotations

import importlib
from typing import Any

from specplug.bench.metrics import Aggregate

__all__ = ["KINDS", "aggregate_json", "kind_module", "render_extra", "summary_doc"]

#: suite kind -> module under specplug.bench.kinds (one kind may share a module with another)
KINDS: dict[str, str] = {
    "model_drafters": "model_drafters",
    "model_drafters_vllm": "model_drafters",
    "retrieval_jacobi": "retrieval_jacobi",
    "ngram_family": "ngram_family",
    "pld_vs_ngram": "pld_vs_ngram",
    "churn": "churn",
    "repetition": "repetition",
    "image": "image",
}

#: the kinds a suite file can name (the others only render documents their sibling kind writes)
RUNNABLE = ("model_drafters", "retrieval_jacobi", "ngram_family", "pld_vs_ngram", "churn",
            "repetition", "image")

#: the keys every aggregate of a summary carries (missing figures are None)
AGG_KEYS = tuple(Aggregate().to_json())


def kind_module(kind: str):
    if kind not in KINDS:
        raise KeyError(f"unknown suite kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return importlib.import_module(f"specplug.bench.kinds.{KINDS[kind]}")


def render_extra(results, heading: str = "#") -> list[str]:
    """The markdown lines of ``results.extra`` by the renderer of its kind (nothing for an unknown kind)."""
    kind = (results.extra or {}).get("kind")
    if kind not in KINDS:
        return []
    return kind_module(kind).render(results, heading)


def aggregate_json(**figures: Any) -> dict[str, Any]:
    """An aggregate of a summary-only document: the figures given, every other key ``None``.

    Counts given as sums (``new_tokens``, ``steps``, ...) also give the ratios the schema derives from
    them; ratios given directly (a legacy file that kept only ``mat``) are carried as they are.
    """
    out: dict[str, Any] = dict.fromkeys(AGG_KEYS)
    sums = {k: v for k, v in figures.items() if k in Aggregate.__dataclass_fields__ and v is not None}
    if {"new_tokens", "steps"} <= set(sums):
        derived = Aggregate(**sums).to_json()
        out.update({k: v for k, v in derived.items() if k in ("mat", "acceptance_rate", "tokens_per_s")})
        if "seconds" not in sums:
            out["tokens_per_s"] = None
        if "drafted" not in sums:
            out["acceptance_rate"] = None
    out.update({k: v for k, v in figures.items() if v is not None or k not in out})
    return out


def summary_doc(meta: dict, per_method: dict[str, dict[str, dict]], extra: dict | None = None):
    """A summary-only :class:`~specplug.bench.results.BenchResults`: ``per_method`` is
    ``{method: {"overall": aggregate, "categories": {category: aggregate}}}`` (categories may be empty)."""
    from specplug.bench.results import BenchResults

    summary = {m: {"overall": s["overall"], "categories": s.get("categories", {})} for m, s in per_method.items()}
    return BenchResults(meta, list(per_method), summary, [], extra)


def goal_lines(goals: list, heading: str) -> list[str]:
    """A goals section: strings as they are, or ``{"goal", "met", "figure"}`` objects."""
    if not goals:
        return []
    out = [f"{heading}# Goals", ""]
    for g in goals:
        if isinstance(g, str):
            out.append(f"- {g}")
        else:
            verdict = "met" if g["met"] else "not met" if g["met"] is not None else "not measured"
            out.append(f"- {verdict}: {g['goal']} ({g['figure']})")
    return out + [""]


def script_flags(settings: dict[str, Any]) -> list[str]:
    """Command-line flags of a benchmark's own parser from suite settings: ``max_tokens = 32`` ->
    ``--max-tokens 32``, ``true`` -> the bare flag, ``false``/``None`` -> nothing, lists joined by commas
    (``nargs`` options take ``{"split": [...]}``: one argument per item)."""
    argv: list[str] = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, dict) and "split" in value:
            argv += [flag, *map(str, value["split"])]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        elif isinstance(value, dict):
            import json

            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def demoted(markdown: str, heading: str) -> list[str]:
    """A report's lines without its title, each heading one level under ``heading``."""
    lines = markdown.rstrip("\n").split("\n")
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return [heading + line if line.startswith("#") else line for line in lines] + [""]


def run_script(module, suite, quick: bool, out_dir, settings: dict[str, Any], out_flag: list[str], legacy: str,
               keep: tuple[str, ...] = ()) -> list:
    """Run a benchmark's own ``main(argv)`` with ``settings`` (see :func:`script_flags`; from
    :func:`specplug.bench.suites.settings_of`) into a temporary folder, then write
    the ``specplug-bench/1`` documents its ``convert`` makes of the file it wrote (``legacy``); files
    matching ``keep`` (plots) are copied beside them."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from specplug.bench.suites import write_documents

    with tempfile.TemporaryDirectory(prefix=f"specplug-{suite.name}-") as tmp:
        module.COMMAND = suite.command(quick)
        module.main(script_flags(settings) + [part.format(tmp=tmp) for part in out_flag])
        path = Path(tmp) / legacy
        docs = module.convert(json.loads(path.read_text(encoding="utf-8")), path)
        written = write_documents(docs, Path(out_dir), quick)
        for pattern in keep:
            for extra in sorted(Path(tmp).glob(pattern)):
                target = Path(out_dir) / (extra.stem + ("_quick" if quick else "") + extra.suffix)
                shutil.copyfile(extra, target)
                written.append(target)
    return written


def script_entry(worker, main) -> None:
    """``python KIND.py --worker JOB OUT`` runs one vLLM engine job (``worker(job) -> result``) in this
    process, as the kind's runner starts it; anything else runs the kind's own ``main``."""
    import json
    import sys
    from pathlib import Path

    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        job = json.loads(Path(sys.argv[2]).read_text())
        Path(sys.argv[3]).write_text(json.dumps(worker(job)))
    else:
        main()
