"""``specplug bench``: plain decoding and methods on the same prompts, measured in one run.

Modules: :mod:`~specplug.bench.metrics` (records, aggregates; pure), :mod:`~specplug.bench.results`
(the results document and its markdown; pure), :mod:`~specplug.bench.prompts` (Spec-Bench and jsonl
prompt sets), :mod:`~specplug.bench.runner` (engines, cache, progress), :mod:`~specplug.bench.plots`
(matplotlib figures) and :mod:`~specplug.bench.commands` (the click command). Importing this package
imports none of torch, transformers, vllm or matplotlib.
"""
