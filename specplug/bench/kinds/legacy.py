"""Convert results files of the old bespoke benchmark scripts into ``specplug-bench/1`` documents.

    python -m specplug.bench.kinds.legacy docs/results/model_drafters.json [more files ...]

Each file's format is recognised by its content, converted by its kind's ``convert`` (every figure
carried over as it was measured, nothing recomputed that the file already held), and written beside
it as ``<stem>.json`` + ``<stem>.md`` with ``meta["converted_from"]`` naming the source. A source
whose stem is not among the outputs (``model_drafters.json`` becomes ``model_drafters_k<K>`` and
``model_drafters_vllm``) is removed, with its old ``.md``. Files already in ``specplug-bench/1`` are
left alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from specplug.bench.results import SCHEMA

__all__ = ["convert_file", "detect"]


def detect(data: dict) -> str | None:
    """The suite kind whose old script wrote ``data`` (``None``: already ``specplug-bench/1``)."""
    if data.get("schema") == SCHEMA:
        return None
    if data.get("schema") == "specplug-model-drafters/1":
        return "model_drafters"
    if data.get("schema") == "specplug-image/1":
        return "image"
    if "heads" in data and ("reference" in data or "vllm" in data):
        return "trained_heads"
    if "sets" in data and "timing" in data:
        return "repetition"
    if "specplug_pld_mat_overall" in data:
        return "pld_vs_ngram"
    if "per_category" in data and "measured" in data:
        return "ngram_family"
    if "rows" in data and "uptime" in data:
        return "churn"
    raise ValueError("not a results file of a known benchmark")


def convert_file(path: Path, out_dir: Path | None = None) -> list[Path]:
    """Convert one file; returns the paths written (empty when it needed no conversion)."""
    from specplug.bench.kinds import kind_module
    from specplug.bench.suites import write_documents

    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        kind = detect(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if kind is None:
        return []
    docs = kind_module(kind).convert(data, path)
    for results in docs.values():
        results.meta.setdefault("converted_from", f"{path.name} (written by the old {kind} benchmark script)")
    out = out_dir or path.parent
    written = write_documents(docs, out)
    if path.stem not in docs and out == path.parent:
        path.unlink()
        if path.with_suffix(".md").exists():
            path.with_suffix(".md").unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="write the documents here (default: beside each file)")
    args = parser.parse_args(argv)
    for path in args.files:
        written = convert_file(path, args.out)
        print(f"{path}: " + (", ".join(p.name for p in written) if written else "already specplug-bench/1"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
