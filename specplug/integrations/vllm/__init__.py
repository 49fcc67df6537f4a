"""specplug inside vLLM.

- ``adapter.py``: level 1, any registered method as a ``custom_class`` proposer (no patching).
- ``rows.py``: tells requests apart by row when vLLM gives no request ids (level 1).
- ``level2_state.py``: what the level 2 plugin provides, shared with the adapter (no vllm import).
- ``plugin.py``: level 2, the opt-in ``vllm.general_plugins`` entry point (version gate, once per process).
- ``patches.py``: level 2's five small wrappers around vLLM's model runner and rejection sampler.
- ``commands.py``: ``specplug vllm-config``, the JSON to pass to ``--speculative-config``.
- ``worker.py``: one real engine per process, driven by a JSON job (``python -m``), its records on stdout.
- ``jobs.py``: runs worker jobs for benchmarks, tests and training data (one vLLM cache folder per
  process, plain decoding computed once per process), and the batch-1-then-batch helper.
- ``metrics.py``: the spec-decode counters of an offline ``vllm.LLM``.
- ``peers.py``: vLLM's own proposers (ngram, suffix) as peers that benchmarks replay and time beside
  specplug's, the ``VllmConfig`` stand-in they read, and the installed vLLM's version.
- ``loadgen.py``: drives a vLLM OpenAI server on loopback (start and stop by PID, streaming, the state trace).

Importing this package does not import vllm; the code that needs it (the patches, the worker)
imports it inside functions.
"""
