"""vLLM's speculative-decoding counters, read from an offline ``vllm.LLM``.

Needs ``LLM(..., disable_log_stats=False)``. The counters are cumulative: take them before and after
a ``generate`` call and subtract for per-call figures. Imports nothing from vLLM itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SPEC_COUNTERS", "spec_decode_counters"]

SPEC_COUNTERS = (
    "vllm:spec_decode_num_drafts",
    "vllm:spec_decode_num_draft_tokens",
    "vllm:spec_decode_num_accepted_tokens",
)


def spec_decode_counters(llm: Any) -> dict[str, int]:
    """``{counter name: total so far}`` for :data:`SPEC_COUNTERS` (0 when vLLM has not reported one)."""
    totals = dict.fromkeys(SPEC_COUNTERS, 0)
    for metric in llm.get_metrics():
        if metric.name in totals:
            totals[metric.name] += int(getattr(metric, "value", 0))
    return totals
