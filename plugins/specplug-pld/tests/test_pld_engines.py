"""pld in the engines: greedy output identical to plain decoding (reference engine and vLLM).

- fast: a tiny random Llama in specplug's reference engine, every lossless verifier;
- ``slow``: SmolLM2-135M (float32) on three Spec-Bench prompts, reference engine;
- ``vllm``: vLLM's CPU build through specplug's custom_class adapter (``specplug.vllm.pld``),
  one engine per process via :func:`specplug.testing.run_vllm_job`.
"""

from __future__ import annotations

import pytest

from specplug.registry import get_registry
from specplug.testing import (
    LOSSLESS_VERIFIERS,
    assert_greedy_lossless,
    repetitive_prompts,
    run_vllm_job,
    spec_bench_chat_prompts,
    total_accepted,
)

METHOD = "pld"
OPTIONS: dict = {"min_ngram": 1, "max_ngram": 3}


def build():
    return get_registry().method(METHOD).build(OPTIONS)


def test_greedy_lossless_on_a_tiny_model_and_drafts_get_accepted():
    from specplug.testing import tiny_llama

    model = tiny_llama(vocab_size=128, seed=1)
    prompts = repetitive_prompts(3, 128) + [[5, 9, 17]]
    out = assert_greedy_lossless(build, model, prompts, k=4, max_new_tokens=40)
    assert total_accepted(out) > 0, "no draft token was ever accepted: the test would pass with an empty proposer"


@pytest.mark.slow
def test_greedy_lossless_on_smollm2_spec_bench():
    from specplug.models import load_model

    model, tokenizer = load_model("smollm2-135m")
    prompts = spec_bench_chat_prompts(tokenizer, 3)
    out = assert_greedy_lossless(build, model, prompts, k=5, max_new_tokens=48, verifiers=("greedy_match", "speculative_sampling"),
                                 tokenizer=tokenizer)
    assert total_accepted(out) > 0


@pytest.mark.vllm
def test_vllm_greedy_lossless_on_a_tiny_model(tmp_path):
    from specplug.testing import tiny_model_dir

    model = str(tiny_model_dir(tmp_path / "tiny", hidden=128))
    prompts = repetitive_prompts(4, 40000)
    base = run_vllm_job(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24})
    spec = run_vllm_job(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24,
                                   "speculative_config": {"model": f"specplug.vllm.{METHOD}", "num_speculative_tokens": 4},
                                   "additional_config": {"specplug": {"options": OPTIONS}}})
    assert spec["outputs"] == base["outputs"]
    assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_greedy_lossless_on_smollm2(tmp_path):
    from specplug.models import resolve_model
    from transformers import AutoTokenizer

    model = resolve_model("smollm2-135m")
    prompts = spec_bench_chat_prompts(AutoTokenizer.from_pretrained(model), 3)
    job = {"model": model, "prompts": prompts, "max_tokens": 48, "max_model_len": 1024, "ignore_eos": False}
    base = run_vllm_job(tmp_path, job)
    spec = run_vllm_job(tmp_path, dict(job, speculative_config={"model": f"specplug.vllm.{METHOD}", "num_speculative_tokens": 5},
                                       additional_config={"specplug": {"options": OPTIONS}}))
    assert spec["outputs"] == base["outputs"]
    assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
