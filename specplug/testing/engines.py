"""Conformance tests a method plugin inherits: greedy output equals plain decoding in every engine.

A plugin's test module subclasses :class:`MethodEngineConformance` and names its method::

    class TestPldInEngines(MethodEngineConformance):
        method = "pld"
        options = {"min_ngram": 1, "max_ngram": 3}

pytest then collects four tests for it:

- fast: a tiny random Llama in specplug's reference engine, every lossless verifier, and at least one
  accepted draft token (so an empty proposer cannot pass);
- ``slow``: SmolLM2-135M (float32) on three Spec-Bench prompts, reference engine;
- ``vllm``: vLLM's CPU build through specplug's custom_class adapter (``specplug.vllm.<method>``),
  on a tiny model and (``slow``) on SmolLM2, one engine per process via
  :func:`specplug.testing.vllm.run_vllm_job`; outputs equal vLLM without speculation and vLLM's accepted
  counter is above zero. The plain run is shared by every plugin's test in one session (same tiny
  model folder, same prompts), so it runs once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from specplug.registry import get_registry
from specplug.testing.lossless import assert_greedy_lossless, total_accepted
from specplug.testing.prompts import repetitive_prompts, spec_bench_chat_prompts
from specplug.testing.vllm import run_vllm_job, session_tiny_model_dir

__all__ = ["MethodEngineConformance"]


class MethodEngineConformance:
    """Base class of a plugin's engine tests (not collected itself: its name does not start with Test)."""

    method: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    #: verifiers of the SmolLM2 reference-engine test (tree methods want ``tree_verification``)
    smollm2_verifiers: ClassVar[tuple[str, ...]] = ("greedy_match", "speculative_sampling")

    def build(self):
        return get_registry().method(self.method).build(self.options)

    def _speculative(self, k: int) -> dict[str, Any]:
        return {
            "speculative_config": {"model": f"specplug.vllm.{self.method}", "num_speculative_tokens": k},
            "additional_config": {"specplug": {"options": self.options}},
        }

    def test_greedy_lossless_on_a_tiny_model_and_drafts_get_accepted(self):
        from specplug.testing.models import tiny_llama

        model = tiny_llama(vocab_size=128, seed=1)
        prompts = repetitive_prompts(3, 128) + [[5, 9, 17]]
        out = assert_greedy_lossless(self.build, model, prompts, k=4, max_new_tokens=40)
        assert total_accepted(out) > 0, "no draft token was ever accepted: the test would pass with an empty proposer"

    @pytest.mark.slow
    def test_greedy_lossless_on_smollm2_spec_bench(self):
        from specplug.models import load_model

        model, tokenizer = load_model("smollm2-135m")
        prompts = spec_bench_chat_prompts(tokenizer, 3)
        out = assert_greedy_lossless(
            self.build, model, prompts, k=5, max_new_tokens=48, verifiers=self.smollm2_verifiers, tokenizer=tokenizer
        )
        assert total_accepted(out) > 0

    @pytest.mark.vllm
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path, tmp_path_factory):
        model = session_tiny_model_dir(tmp_path_factory)
        job = {"model": model, "prompts": repetitive_prompts(4, 40000), "max_tokens": 24}
        base = run_vllm_job(tmp_path, job)
        spec = run_vllm_job(tmp_path, dict(job, **self._speculative(4)))
        assert spec["outputs"] == base["outputs"]
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0

    @pytest.mark.vllm
    @pytest.mark.slow
    def test_vllm_greedy_lossless_on_smollm2(self, tmp_path):
        from transformers import AutoTokenizer

        from specplug.models import resolve_model

        model = resolve_model("smollm2-135m")
        prompts = spec_bench_chat_prompts(AutoTokenizer.from_pretrained(model), 3)
        job = {"model": model, "prompts": prompts, "max_tokens": 48, "max_model_len": 1024, "ignore_eos": False}
        base = run_vllm_job(tmp_path, job)
        spec = run_vllm_job(tmp_path, dict(job, **self._speculative(5)))
        assert spec["outputs"] == base["outputs"]
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
