"""State the level 2 plugin shares with level 1 adapters, in a module that never imports vllm.

The plugin (``plugin.py``) marks level 2 active after patching vLLM and lists the needs it
provides; adapters check their method's needs against :func:`provided_needs` when the engine starts.
With level 2 active, the patched model runner hands each adapter the batch's real request ids
before ``propose`` (``adapter.bind_batch``) and reports what vLLM finished or aborted
(``adapter.finish_requests``). :class:`StateTrace` (opt-in, ``SPECPLUG_VLLM_TRACE``) lets tests
watch the proposers' per-request state and memory from outside the server.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

from specplug.protocols import Need

__all__ = ["StateTrace", "activate", "active", "drafters", "make_trace", "proposer_footprint", "provided_needs"]

LOGGER = "specplug.vllm"


def get_logger() -> logging.Logger:
    """specplug's logger inside vLLM, made visible at INFO when nobody configured logging."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("specplug %(levelname)s %(asctime)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


_provided: frozenset[Need] = frozenset()
_drafters: "weakref.WeakSet[Any]" = weakref.WeakSet()


def activate(needs: frozenset[Need]) -> None:
    global _provided
    _provided = frozenset(needs)


def active() -> bool:
    return bool(_provided)


def provided_needs() -> frozenset[Need]:
    return _provided


def register_drafter(drafter: Any) -> None:
    _drafters.add(drafter)


def drafters() -> list[Any]:
    return list(_drafters)


# -- the state trace (opt-in, for tests and benchmarks) ----------------------------------------------

TRACE_ENV = "SPECPLUG_VLLM_TRACE"
TRACE_DRAFTS_ENV = "SPECPLUG_VLLM_TRACE_DRAFTS"


def proposer_footprint(obj: Any, ids: set[str]) -> tuple[int, list[str]]:
    """``(bytes, ids still referenced)`` of a proposer's object graph, walked generically.

    Bytes: ``sys.getsizeof`` of every object reached plus numpy arrays' buffers (arrays are leaves).
    Ids: the members of ``ids`` found as strings anywhere in the graph (dict keys and values, set and
    list members, attributes). No cooperation from the proposer is needed, so any method can be checked
    for state it keeps after its requests are gone.
    """
    import sys
    import types

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    seen: set[int] = set()
    found: set[str] = set()
    total = 0
    stack = [obj]
    while stack and len(seen) < 2_000_000:
        item = stack.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes + 112
            continue
        total += sys.getsizeof(item)
        if isinstance(item, str):
            if item in ids:
                found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)) or type(item).__name__ == "deque":
            stack.extend(item)
        else:
            stack.extend(getattr(item, "__dict__", {}).values())
            for slot in getattr(type(item), "__slots__", ()):
                if hasattr(item, slot):
                    stack.append(getattr(item, slot))
    return total, sorted(found)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rank() -> int:
    try:
        from vllm.distributed.parallel_state import get_tensor_model_parallel_rank

        return int(get_tensor_model_parallel_rank())
    except Exception:  # noqa: BLE001 - not initialised: a single process
        return 0


class StateTrace:
    """With ``SPECPLUG_VLLM_TRACE=<folder>``, each vLLM process running a specplug drafter appends JSON
    lines to ``<folder>/<method>-<pid>.jsonl``:

    - ``{"event": "state", ...}`` at every step where vLLM reported finished or aborted requests, after
      the drafter finished them: the tensor-parallel ``rank``, lifecycle counters (``started``,
      ``finished``, ``live``), ``held`` (ids of requests already finished that the proposer still
      references: should stay empty), ``proposer_bytes`` (see :func:`proposer_footprint`) and the
      process's ``rss_bytes``;
    - with ``SPECPLUG_VLLM_TRACE_DRAFTS=1`` also ``{"event": "drafts", "step": n, "drafts": {id: [...]}}``
      for every step's drafts (to compare tensor-parallel ranks).

    Test and benchmark use only: it keeps the ids of finished requests in memory.
    """

    def __init__(self, folder: str, method: str):
        import os

        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{method}-{os.getpid()}.jsonl")
        self.method = method
        self.drafts_too = os.environ.get(TRACE_DRAFTS_ENV) == "1"
        self.started = 0
        self.ended: set[str] = set()
        self.step = 0

    def _write(self, record: dict) -> None:
        import json
        import os

        record.update(pid=os.getpid(), rank=_rank(), method=self.method, step=self.step)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def state(self, proposer: Any, live: int) -> None:
        """Record ``proposer``'s footprint and the requests it still holds; ``live``: requests started
        and not finished."""
        size, held = proposer_footprint(proposer, self.ended)
        self._write({"event": "state", "started": self.started, "finished": len(self.ended),
                     "live": live, "held": held[:16], "num_held": len(held),
                     "proposer_bytes": size, "rss_bytes": _rss_bytes()})

    def drafts(self, req_ids: list, drafts: Any) -> None:
        if self.drafts_too and isinstance(drafts, list):
            self._write({"event": "drafts", "drafts": {r: list(map(int, d)) for r, d in zip(req_ids, drafts) if r is not None and d}})


def make_trace(method: str) -> StateTrace | None:
    """A trace for a drafter of ``method`` when ``SPECPLUG_VLLM_TRACE`` is set, else None."""
    import os

    folder = os.environ.get(TRACE_ENV)
    return StateTrace(folder, method) if folder else None
