"""specplug's own suite kinds, registered through the same hook as any plugin's.

The kinds live in :mod:`specplug.bench.kinds` (each module ends with its ``KIND``); this module only
registers. A method's own benchmark (image generation, model drafters, trained heads, retrieval and
Jacobi-family methods) registers from its plugin.
"""

from __future__ import annotations

from specplug.bench.kinds import adaptive_vllm, bench, churn, ngram_family, pld_vs_ngram, repetition
from specplug.hookspecs import hookimpl


@hookimpl
def specplug_register_bench_kinds(register):
    for module in (bench, ngram_family, pld_vs_ngram, churn, repetition, adaptive_vllm):
        register(module.KIND)
