"""pld in the engines: greedy output identical to plain decoding (reference engine and vLLM).

- fast: a tiny random Llama in specplug's reference engine, every lossless verifier;
- ``slow``: SmolLM2-135M (float32) on three Spec-Bench prompts, reference engine;
- ``vllm``: vLLM's CPU build through specplug's custom_class adapter (``specplug.vllm.pld``),
  one engine per process via the repository's ``tests/vllm/engine_runner.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from specplug.registry import get_registry
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless

METHOD = "pld"
OPTIONS: dict = {"min_ngram": 1, "max_ngram": 3}
REPO = Path(__file__).resolve().parents[3]
RUNNER = REPO / "tests" / "vllm" / "engine_runner.py"
SPEC_BENCH = REPO.parent / "shared" / "data" / "spec_bench" / "question.jsonl"


def build():
    return get_registry().method(METHOD).build(OPTIONS)


def repetitive_prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """A short random phrase said three times: there is something to look up from step one."""
    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        phrase = rng.integers(3, vocab, size=int(rng.integers(3, 7))).tolist()
        prompts.append(phrase * 3 + phrase[:2])
    return prompts


def accepted(results_by_verifier) -> int:
    return sum(r.stats.accepted for results in results_by_verifier.values() for r in results)


def test_greedy_lossless_on_a_tiny_model_and_drafts_get_accepted():
    from specplug.testing import tiny_llama

    model = tiny_llama(vocab_size=128, seed=1)
    prompts = repetitive_prompts(3, 128) + [[5, 9, 17]]
    out = assert_greedy_lossless(build, model, prompts, k=4, max_new_tokens=40)
    assert accepted(out) > 0, "no draft token was ever accepted: the test would pass with an empty proposer"


def spec_bench_chat_prompts(tokenizer, n: int) -> list[list[int]]:
    rows = [json.loads(line) for line in SPEC_BENCH.read_text().splitlines() if line.strip()]
    picked, seen = [], set()
    for row in rows:  # one prompt from each of the first n categories
        if row["category"] in seen:
            continue
        seen.add(row["category"])
        text = tokenizer.apply_chat_template([{"role": "user", "content": row["turns"][0]}], tokenize=False, add_generation_prompt=True)
        picked.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(picked) == n:
            break
    return picked


@pytest.mark.slow
def test_greedy_lossless_on_smollm2_spec_bench():
    from specplug.models import load_model

    model, tokenizer = load_model("smollm2-135m")
    prompts = spec_bench_chat_prompts(tokenizer, 3)
    out = assert_greedy_lossless(build, model, prompts, k=5, max_new_tokens=48, verifiers=("greedy_match", "speculative_sampling"),
                                 tokenizer=tokenizer)
    assert accepted(out) > 0


def run_vllm(tmp: Path, job: dict) -> dict:
    pytest.importorskip("vllm")
    if not RUNNER.exists():
        pytest.fail(f"{RUNNER} is missing: these tests use the repository's vLLM engine runner")
    tmp.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    job_path, out_path = tmp / f"job-{stamp}.json", tmp / f"out-{stamp}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               VLLM_CACHE_ROOT=str(tmp / "vllm-cache"))
    proc = subprocess.run([sys.executable, str(RUNNER), str(job_path), str(out_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    if not out_path.exists():
        pytest.fail(f"vLLM engine exited {proc.returncode} without a result:\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(out_path.read_text())
    if "crash" in result:
        pytest.fail(f"vLLM engine crashed:\n{result['crash'][-4000:]}")
    return result


@pytest.mark.vllm
def test_vllm_greedy_lossless_on_a_tiny_model(tmp_path):
    from specplug.testing import tiny_model_dir

    model = str(tiny_model_dir(tmp_path / "tiny", hidden=128))
    prompts = repetitive_prompts(4, 40000)
    base = run_vllm(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24})
    spec = run_vllm(tmp_path, {"model": model, "prompts": prompts, "max_tokens": 24,
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
    base = run_vllm(tmp_path, job)
    spec = run_vllm(tmp_path, dict(job, speculative_config={"model": f"specplug.vllm.{METHOD}", "num_speculative_tokens": 5},
                                   additional_config={"specplug": {"options": OPTIONS}}))
    assert spec["outputs"] == base["outputs"]
    assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
