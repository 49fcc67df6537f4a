"""Block verification inside vLLM through specplug's level 2 verifier hook: greedy output identical
to vLLM without speculation, and at temperature 1 the hook verifies vLLM's sampled drafts with their
probabilities (tokens accepted). Two engines, one process each; a tiny random model."""

from __future__ import annotations

import pytest

from specplug.testing import repetitive_prompts, run_vllm_job, session_tiny_model_dir

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def draft_and_target(tmp_path_factory):
    from specplug.models.derive import derive_model

    model = session_tiny_model_dir(tmp_path_factory)
    draft = derive_model(model, "0", tmp_path_factory.mktemp("block") / "draft")
    return model, str(draft)


def test_block_verification_in_vllm_is_greedy_lossless_and_verifies_sampled_drafts(draft_and_target, tmp_path, monkeypatch):
    model, draft = draft_and_target
    prompts = repetitive_prompts(3, 40000)
    greedy = [{"temperature": 0.0}] * len(prompts)
    sampled = [{"temperature": 1.0, "seed": 7 + i} for i in range(len(prompts))]
    job = {"model": model, "prompts": prompts + prompts, "sampling": greedy + sampled, "max_tokens": 20}
    plain = run_vllm_job(tmp_path, job)
    monkeypatch.setenv("SPECPLUG_VLLM_LEVEL2", "1")
    spec = {"method": "draft_model", "model": draft, "num_speculative_tokens": 4, "draft_sample_method": "probabilistic"}
    out = run_vllm_job(tmp_path, {**job, "level2": True, "speculative_config": spec,
                                  "additional_config": {"specplug": {"verifier": "block_verification"}}})
    assert out["outputs"][: len(prompts)] == plain["outputs"][: len(prompts)]
    assert all(len(o) == 20 for o in out["outputs"])
    assert out["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
    assert "specplug verifier 'block_verification' replaces" in out["log"]
