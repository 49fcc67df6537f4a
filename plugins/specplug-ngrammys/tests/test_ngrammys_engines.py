"""ngrammys in the engines: greedy output identical to plain decoding. Reference engine: the bigram table
from the engine's own target, the drafts verified as a tree; vLLM: the table from the option ``model``
(the same tiny model folder), the first chain. The SmolLM2 vLLM run is left to sam_decoding's tests."""

import pytest

from specplug.testing.engines import MethodEngineConformance
from specplug.testing.prompts import repetitive_prompts
from specplug.testing.vllm import run_vllm_job, session_tiny_model_dir


class TestNgrammysInEngines(MethodEngineConformance):
    method = "ngrammys"
    options = {"num_drafts": 3}
    smollm2_verifiers = ("greedy_match", "tree_verification")
    test_vllm_greedy_lossless_on_smollm2 = None

    @pytest.mark.vllm
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path, tmp_path_factory):
        model = session_tiny_model_dir(tmp_path_factory)
        job = {"model": model, "prompts": repetitive_prompts(4, 40000), "max_tokens": 24}
        base = run_vllm_job(tmp_path, job)
        spec = run_vllm_job(tmp_path, dict(job, speculative_config={"model": "specplug.vllm.ngrammys", "num_speculative_tokens": 4},
                                           additional_config={"specplug": {"options": {"model": model}}}))
        assert spec["outputs"] == base["outputs"]
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
