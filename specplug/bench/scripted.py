"""Suite kinds whose benchmark is a script with its own ``main(argv)`` (argparse flags, one results file).

:func:`run_script` turns the suite's settings into the script's flags, runs it into a temporary
folder and writes the ``specplug-bench/1`` documents its ``convert`` makes of the file it wrote.
Scripts run their vLLM engines through :mod:`specplug.integrations.vllm.jobs`, each in its own process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from specplug.bench.documents import write_documents

__all__ = ["run_script", "script_flags"]


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
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def run_script(module, suite, quick: bool, out_dir, settings: dict[str, Any], out_flag: list[str], legacy: str,
               keep: tuple[str, ...] = ()) -> list:
    """Run a benchmark's own ``main(argv)`` with ``settings`` (see :func:`script_flags`; from
    :func:`specplug.bench.suites.settings_of`) into a temporary folder, then write
    the ``specplug-bench/1`` documents its ``convert`` makes of the file it wrote (``legacy``); files
    matching ``keep`` (plots) are copied beside them."""
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
