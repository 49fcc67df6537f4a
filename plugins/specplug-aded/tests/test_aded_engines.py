"""aded in the engines: greedy output identical to plain decoding (reference engine: whole trees; vLLM:
the most visited path). The vLLM tiny-model test also runs with specplug's state trace (level 2, real
request ids) and checks that no finished request is still held. The SmolLM2 vLLM run is left to
sam_decoding's tests (one per family)."""

import pytest

from specplug.testing.engines import MethodEngineConformance
from specplug.testing.prompts import repetitive_prompts
from specplug.testing.vllm import run_vllm_job, session_tiny_model_dir


class TestAdedInEngines(MethodEngineConformance):
    method = "aded"
    options = {"simulations": 16}
    smollm2_verifiers = ("greedy_match", "tree_verification")
    test_vllm_greedy_lossless_on_smollm2 = None

    @pytest.mark.vllm
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path, tmp_path_factory):
        from specplug.integrations.vllm.loadgen import read_trace

        model = session_tiny_model_dir(tmp_path_factory)
        job = {"model": model, "prompts": repetitive_prompts(4, 40000), "max_tokens": 24}
        base = run_vllm_job(tmp_path, job)
        trace = tmp_path / "trace"
        spec = run_vllm_job(tmp_path, dict(job, **self._speculative(4)),
                            env={"SPECPLUG_VLLM_LEVEL2": "1", "SPECPLUG_VLLM_TRACE": str(trace)})
        assert spec["outputs"] == base["outputs"]
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
        states = read_trace(trace, "state")
        assert states and all(s["num_held"] == 0 for s in states), [s["held"] for s in states]
