"""Convert results files of the old bespoke benchmark scripts into ``specplug-bench/1`` documents.

    python -m specplug.bench.legacy docs/results/model_drafters.json [more files ...]

Each file's format is recognised by the ``detect`` of a registered suite kind (its plugin must be
installed), converted by that kind's ``convert`` (every figure
carried over as it was measured, nothing recomputed that the file already held), and written beside
it as ``<stem>.json`` + ``<stem>.md`` with ``meta["converted_from"]`` naming the source. A source
whose stem is not among the outputs (``model_drafters.json`` becomes ``model_drafters_k<K>`` and
``model_drafters_vllm``) is removed, with its old ``.md``. Files already in ``specplug-bench/1`` are
left alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from specplug.bench.documents import write_documents
from specplug.bench.results import SCHEMA

__all__ = ["convert_file", "convert_legacy_versions", "detect", "legacy_version"]


def detect(data: dict) -> str | None:
    """The suite kind whose old script wrote ``data`` (``None``: already ``specplug-bench/1``)."""
    from specplug.registry import get_registry

    if data.get("schema") == SCHEMA:
        return None
    kinds = get_registry().bench_kinds
    found = sorted(k for k, spec in kinds.items() if spec.detect is not None and spec.detect(data))
    if len(found) > 1:
        raise ValueError(f"the results file looks like the old output of several kinds: {', '.join(found)}")
    if not found:
        known = ", ".join(sorted(k for k, spec in kinds.items() if spec.detect is not None))
        raise ValueError(f"not a results file of a known benchmark (kinds that convert: {known}; "
                         "the plugin of its kind may not be installed)")
    return found[0]


def convert_file(path: Path, out_dir: Path | None = None) -> list[Path]:
    """Convert one file; returns the paths written (empty when it needed no conversion)."""
    from specplug.registry import get_registry

    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        kind = detect(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if kind is None:
        return []
    docs = get_registry().bench_kind(kind).convert(data, path)
    for results in docs.values():
        results.meta.setdefault("converted_from", f"{path.name} (written by the old {kind} benchmark script)")
    out = out_dir or path.parent
    written = write_documents(docs, out)
    if path.stem not in docs and out == path.parent:
        path.unlink()
        if path.with_suffix(".md").exists():
            path.with_suffix(".md").unlink()
    return written


def legacy_version(path: Path, accept: Callable[[dict], bool] | None = None) -> dict | None:
    """The newest committed version of the results file ``path`` that its old script wrote (by default:
    not ``specplug-bench/1``; ``accept`` chooses otherwise), from git history; ``None`` where the history
    has none (a shallow clone, a file never committed in an older format)."""
    path = Path(path).resolve()
    accept = accept or (lambda data: data.get("schema") != SCHEMA)
    def git(*argv: str, cwd: Path = path.parent) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True)

    root = git("rev-parse", "--show-toplevel").stdout.strip()
    if not root:
        return None
    rel = path.relative_to(Path(root).resolve()).as_posix()
    for commit in git("log", "--format=%H", "--", rel, cwd=Path(root)).stdout.split():
        blob = git("show", f"{commit}:{rel}", cwd=Path(root))
        if blob.returncode == 0:
            data = json.loads(blob.stdout)
            if accept(data):
                return data
    return None


def convert_legacy_versions(
    results_dir: Path, out_dir: Path, name: str, siblings: Sequence[str] = (), accept: Callable[[str, dict], bool] | None = None
) -> dict | None:
    """Convert the legacy version of ``results_dir/name`` (with the legacy versions of ``siblings``, files its
    conversion reads beside it) as a copy in ``out_dir``: the converted documents by stem, or ``None`` where
    the history lacks one of the versions. ``accept(file, data)`` picks the version, as ``legacy_version``'s
    ``accept`` does. How the results-format tests replay an old script's output."""
    from specplug.bench.results import load_results

    def version(file: str) -> dict | None:
        return legacy_version(Path(results_dir) / file, accept and (lambda data: accept(file, data)))

    versions = {file: version(file) for file in (name, *siblings)}
    if any(data is None for data in versions.values()):
        return None
    for file, data in versions.items():
        (Path(out_dir) / file).write_text(json.dumps(data))
    convert_file(Path(out_dir) / name)
    documents = ((p.stem, load_results(p)) for p in Path(out_dir).glob("*.json"))
    return {stem: doc for stem, doc in documents if doc is not None}


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
