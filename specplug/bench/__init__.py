"""``specplug bench``: the benchmark kit. Plain decoding and methods on the same prompts, measured in
one run; suites of benchmarks whose kinds come from plugins; one results schema for every page.

**What plugins may import** (a plugin's suite kind, its tests; everything else here is internal and
may change without notice):

- :mod:`specplug.bench.kind`: :class:`~specplug.bench.kind.BenchKindSpec`, what a kind registers
  (hook ``specplug_register_bench_kinds``);
- :mod:`specplug.bench.suites`: ``Suite`` (``name``, ``path``, ``given(quick)``, ``command(quick)``),
  ``SuiteError``, ``settings_of(suite, quick, defaults)`` (a kind's settings), ``load_suite``,
  ``run_suite`` (tests run a suite with it);
- :mod:`specplug.bench.prompts`: ``Prompt``, ``PromptError``, ``load_prompts``,
  ``one_per_category_first``, ``spec_bench_path``;
- :mod:`specplug.bench.runner`: ``BenchConfig``, ``run_bench`` (plain decoding and methods on the
  reference engine or vLLM, cached), ``encode`` (a prompt's token ids), ``hardware``, ``run_meta``
  (a document's ``meta``);
- :mod:`specplug.bench.metrics`: ``PromptRecord``, ``BASELINE``; :mod:`specplug.bench.results`:
  ``BenchResults``, ``SCHEMA``, ``load_results``, ``render_markdown``, ``fmt``;
- :mod:`specplug.bench.documents`: ``write_documents``, ``write_outputs``, ``summary_doc``,
  ``aggregate_json``, ``goal_lines``, ``demoted`` (writing documents and a kind's ``extra`` section);
- :mod:`specplug.bench.scripted`: ``run_script`` (a kind whose benchmark is a
  script with its own ``main(argv)``);
- :mod:`specplug.bench.legacy`: ``convert_file``, ``detect``, ``legacy_version`` (results files of
  older scripts).

Internal layers, lowest first (none imports a suite kind): ``keys``, ``metrics``, ``results``,
``plots``, ``documents``, ``table``, ``prompts``, ``runner``, ``suites``, ``scripted``; then the
built-in kinds (:mod:`specplug.bench.kinds`), ``workloads`` and the click command (``commands``).
Importing this package imports none of torch, transformers, vllm or matplotlib.
"""
