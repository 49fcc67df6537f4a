"""What a plugin registers to add a benchmark: :class:`BenchKindSpec` (a suite kind).

Imports nothing heavy: the registry holds kinds without importing torch or vllm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BenchKindSpec"]


@dataclass(frozen=True)
class BenchKindSpec:
    """A suite kind as a plugin registers it (hook ``specplug_register_bench_kinds``).

    :param id: the ``kind`` a suite file names.
    :param run: ``run(suite, quick, out_dir) -> written paths``, or ``None`` for a kind that only
        renders documents a sibling kind writes.
    :param render: ``render(results, heading) -> markdown lines`` of a document's ``extra`` section.
    :param convert: ``convert(legacy, path) -> {stem: BenchResults}`` for results an older script wrote.
    """

    id: str
    run: Callable[..., Any] | None = None
    render: Callable[..., Any] | None = None
    convert: Callable[..., Any] | None = None
