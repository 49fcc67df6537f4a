"""The batched adapter path inside a real vLLM engine: lossless with rows reused across requests.

More prompts than ``max_num_seqs``, so vLLM reuses and condenses rows while suffix (stateful:
per-request state plus a global cache of finished outputs) and pld (stateless) draft through
``propose_batch``. Greedy outputs must equal plain decoding's, drafts must get accepted, and the
engine log must show that the batched path was the one taken.
"""

from __future__ import annotations

import pytest

from specplug.testing import repetitive_prompts
from specplug.testing.vllm import run_vllm_job

pytestmark = pytest.mark.vllm


def test_batched_suffix_and_pld_are_lossless_with_rows_reused(tiny_model, tmp_path):
    job = {"model": tiny_model, "prompts": repetitive_prompts(7, 40000, seed=3), "max_tokens": 24, "max_num_seqs": 3}
    base = run_vllm_job(tmp_path, job)
    for method, path in (("suffix", "one propose_batch per step"), ("pld", "no row tracking (stateless)")):
        spec = run_vllm_job(tmp_path, dict(job, speculative_config={"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}))
        assert path in spec["log"], f"{method} did not take the batched path"
        assert "raised in" not in spec["log"]
        assert spec["outputs"] == base["outputs"], method
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0, method
