"""What a plugin registers to add a benchmark: :class:`BenchKindSpec` (a suite kind).

Imports nothing heavy: the registry holds kinds without importing torch or vllm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BenchKindSpec"]


@dataclass(frozen=True)
class BenchKindSpec:
    """A suite kind as a plugin registers it (hook ``specplug_register_bench_kinds``).

    :param id: the ``kind`` a suite file names.
    :param run: ``run(suite, quick, out_dir) -> written paths``, or ``None`` for a kind that only
        renders documents a sibling kind writes.
    :param render: ``render(results, heading) -> markdown lines`` of a document's ``extra`` section
        (a document names its kind in ``extra["kind"]``).
    :param convert: ``convert(legacy, path) -> {stem: BenchResults}`` for results an older script wrote.
    :param detect: ``detect(data) -> bool``: whether a JSON results file is one this kind's older
        script wrote (``python -m specplug.bench.legacy`` then converts it with ``convert``).
    :param defaults: every ``[bench]`` key the kind knows, with its default; a suite is checked
        against them (:func:`specplug.bench.suites.settings_of`) before it runs.
    """

    id: str
    run: Callable[..., Any] | None = None
    render: Callable[..., Any] | None = None
    convert: Callable[..., Any] | None = None
    detect: Callable[[dict], bool] | None = None
    defaults: Mapping[str, Any] | None = None
