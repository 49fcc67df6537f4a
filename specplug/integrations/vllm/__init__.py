"""specplug inside vLLM.

- ``adapter.py``: level 1, any registered method as a ``custom_class`` proposer (no patching).
- ``rows.py``: tells requests apart by row when vLLM gives no request ids (level 1).
- ``level2_state.py``: what the level 2 plugin provides, shared with the adapter (no vllm import).
- ``plugin.py``: level 2, the opt-in ``vllm.general_plugins`` entry point (version gate, once per process).
- ``patches.py``: level 2's five small wrappers around vLLM's model runner and rejection sampler.
- ``commands.py``: ``specplug vllm-config``, the JSON to pass to ``--speculative-config``.
- ``engine_runner.py``: one real engine per process, JSON in and out (the vLLM test tiers run it with ``-m``).
- ``metrics.py``: the spec-decode counters of an offline ``vllm.LLM``.

Importing this package does not import vllm; only ``plugin.py``'s patch functions do.
"""
