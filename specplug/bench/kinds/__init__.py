"""specplug's own suite kinds: the benchmarks ``specplug bench --suite FILE`` runs that are about no
one plugin's method (plain ``bench``, the n-gram family in vLLM, pld vs vLLM's ngram, churn,
repetition). A method's own benchmark lives in its plugin and registers there.

Each kind is one module here that ends with its ``KIND`` (:class:`specplug.bench.kind.BenchKindSpec`),
registered by :mod:`specplug.builtin.bench_kinds`:

- ``run(suite, quick, out_dir) -> written paths``: the benchmark, reading its settings from the
  suite's ``[bench]`` table through :func:`specplug.bench.suites.settings_of` (``[quick]`` overrides
  them for a smoke run; its ``DEFAULTS`` name every key it knows);
- ``render(results, heading) -> lines``: the markdown of the document's ``extra`` section (figures
  that are not per-prompt decoding counts: goals, cost splits, per-step times, quality);
- ``convert(legacy, path) -> {stem: BenchResults}`` and ``is_legacy(data)``: the documents of a
  results file its old bespoke script wrote (see :mod:`specplug.bench.legacy`).

Modules import neither torch nor vllm at import time: the runners import what they need lazily,
and only :mod:`specplug.integrations.vllm` (through the worker processes) imports vllm.
"""
