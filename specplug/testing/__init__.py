"""specplug's test kit: tiny models, lossless checks, conformance suites and a pytest plugin.

Plugin packages test themselves with it; everything below is public API, importable from
``specplug.testing`` directly (each name lives in the module given in brackets).

Tiny models, built in a second or two so tests need no downloads (:mod:`~specplug.testing.models`):

- :func:`tiny_llama`: a random ``LlamaForCausalLM`` (float32, eval mode) with a small vocabulary.
- :func:`tiny_model_dir`: a tiny random Llama saved with SmolLM2's tokenizer, loadable by vLLM.
- :func:`limit_torch_threads`: one torch thread, which tiny models run fastest on.

Lossless checks in specplug's reference engine (:mod:`~specplug.testing.lossless`):

- :func:`assert_greedy_lossless`: greedy output with a proposer's drafts equals plain greedy decoding
  under every verifier of :data:`LOSSLESS_VERIFIERS`.
- :func:`greedy_reference`, :func:`total_accepted`.
- :class:`NoisyOracleProposer`, :class:`RandomProposer` (:mod:`~specplug.testing.proposers`):
  proposers with known behaviour, for testing engines and verifiers.

Prompts (:mod:`~specplug.testing.prompts`): :func:`repetitive_prompts`, :func:`spec_bench_chat_prompts`.

Conformance suites, base classes a plugin's test classes subclass to inherit tests:

- :class:`MethodRegistrationConformance`, :class:`VerifierRegistrationConformance`
  (:mod:`~specplug.testing.registration`): entry point, registration, card, options.
- :class:`VllmAdapterConformance`, :class:`VllmLevel2MethodConformance`
  (:mod:`~specplug.testing.adapter`): the method behind ``specplug.vllm.<id>``, without vLLM.
- :class:`MethodEngineConformance` (:mod:`~specplug.testing.engines`): greedy output equals plain
  decoding in the reference engine and in vLLM, on a tiny model and on SmolLM2.
- :func:`assert_batch_matches_propose` (:mod:`~specplug.testing.batch`): a
  :class:`~specplug.protocols.BatchProposer`'s batch call equals ``propose``.

Toy target (:mod:`~specplug.testing.toy`): :class:`ToyTarget`, :func:`plain`, :func:`speculate`, a
model-free target for property tests that need thousands of steps.

Training (:mod:`~specplug.testing.training`): :func:`tiny_training_workspace`, a tiny target with
its self-distilled training data, for tests of objectives; :func:`tiny_training_target`.

Tiers (:mod:`~specplug.testing.tiers`): :func:`examples` (hypothesis examples per tier), :func:`tier`.

vLLM jobs (:mod:`~specplug.testing.vllm`): :func:`run_vllm_job`, one real engine in its own process;
:func:`session_tiny_model_dir`, the tiny model folder a test session's vLLM tests share.

The pytest plugin (:mod:`~specplug.testing.pytest_plugin`, registered as the ``pytest11`` entry point
``specplug``) gives every test session a fresh registry per test, one torch thread, the ``slow``,
``vllm`` and ``smoke`` markers and the tier's hypothesis profile, so plugin test folders need no
``conftest.py`` for them.

Names are imported on first use: pytest loads this package at start-up in every run, and the
helpers' own imports (torch, the engine, the vLLM adapter) cost seconds.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_EXPORTS = {
    "tiny_llama": "models",
    "tiny_model_dir": "models",
    "limit_torch_threads": "models",
    "LOSSLESS_VERIFIERS": "lossless",
    "assert_greedy_lossless": "lossless",
    "greedy_reference": "lossless",
    "total_accepted": "lossless",
    "NoisyOracleProposer": "proposers",
    "RandomProposer": "proposers",
    "repetitive_prompts": "prompts",
    "spec_bench_chat_prompts": "prompts",
    "MethodRegistrationConformance": "registration",
    "VerifierRegistrationConformance": "registration",
    "VllmAdapterConformance": "adapter",
    "VllmLevel2MethodConformance": "adapter",
    "MethodEngineConformance": "engines",
    "assert_batch_matches_propose": "batch",
    "ToyTarget": "toy",
    "plain": "toy",
    "speculate": "toy",
    "examples": "tiers",
    "tier": "tiers",
    "tiny_training_target": "training",
    "tiny_training_workspace": "training",
    "run_vllm_job": "vllm",
    "session_tiny_model_dir": "vllm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'specplug.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"specplug.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
