"""State the level 2 plugin shares with level 1 adapters, in a module that never imports vllm.

The plugin (``plugin.py``) marks level 2 active after patching vLLM and lists the needs it
provides; adapters check their method's needs against :func:`provided_needs` when the engine starts.
With level 2 active, the patched model runner hands each adapter the batch's real request ids
before ``propose`` (``adapter.request_ids``) and calls ``finish_request`` when vLLM finishes or
aborts a request.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

from specplug.protocols import Need

__all__ = ["activate", "active", "drafters", "ids_for_rows", "provided_needs"]

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


def ids_for_rows(drafter: Any, rows: list[int], num_tokens: np.ndarray, token_ids: np.ndarray) -> dict[int, tuple[str, int]]:
    """``row -> (request id, prompt length)`` from the real ids; starts requests seen for the first time."""
    out: dict[int, tuple[str, int]] = {}
    live = drafter.live_requests
    for row in rows:
        request_id = drafter.request_ids[row]
        num_prompt = int(drafter.num_prompt_tokens[row])
        if request_id not in live:
            live.add(request_id)
            drafter._safe("start_request", drafter.proposer.start_request, request_id, token_ids[row, :num_prompt])
        out[row] = (request_id, num_prompt)
    return out
