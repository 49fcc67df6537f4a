"""llma in the engines: greedy output identical to plain decoding (reference engine and vLLM).

From :class:`specplug.testing.engines.MethodEngineConformance`. A tiny random model's output does not
repeat its prompt, so the tiny-model tests give LLMA what its paper assumes, a reference the output
overlaps: the greedy outputs of a first, plain decode, saved as the reference file (option
``reference``). The SmolLM2 tests copy from the prompt. The SmolLM2 vLLM run is left to
sam_decoding's tests (one per family of model-free methods: the adapter path is the same).
"""

import numpy as np
import pytest

from specplug.registry import get_registry
from specplug.testing.engines import MethodEngineConformance
from specplug.testing.lossless import assert_greedy_lossless, total_accepted
from specplug.testing.prompts import repetitive_prompts
from specplug.testing.vllm import run_vllm_job, session_tiny_model_dir


def save_reference(path, outputs) -> str:
    tokens = [t for output in outputs for t in list(output) + [-1]]
    np.save(path, np.array(tokens, dtype=np.int32))
    return str(path)


class TestLlmaInEngines(MethodEngineConformance):
    method = "llma"
    options = {"trigger": 1}
    test_vllm_greedy_lossless_on_smollm2 = None

    def test_greedy_lossless_on_a_tiny_model_and_drafts_get_accepted(self, tmp_path):
        from specplug.engine import ReferenceEngine
        from specplug.testing.models import tiny_llama

        model = tiny_llama(vocab_size=128, seed=1)
        prompts = repetitive_prompts(3, 128) + [[5, 9, 17]]
        plain = ReferenceEngine(model).generate(prompts, max_new_tokens=40)
        reference = save_reference(tmp_path / "ref.npy", [r.token_ids for r in plain])
        spec = get_registry().method(self.method)
        out = assert_greedy_lossless(lambda: spec.build({"trigger": 2, "reference": reference}), model, prompts, k=4,
                                     max_new_tokens=40)
        assert total_accepted(out) > 0

    @pytest.mark.vllm
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path, tmp_path_factory):
        model = session_tiny_model_dir(tmp_path_factory)
        job = {"model": model, "prompts": repetitive_prompts(4, 40000), "max_tokens": 24}
        base = run_vllm_job(tmp_path, job)
        options = {"trigger": 2, "reference": save_reference(tmp_path / "ref.npy", base["outputs"])}
        spec = run_vllm_job(tmp_path, dict(job, speculative_config={"model": "specplug.vllm.llma", "num_speculative_tokens": 4},
                                           additional_config={"specplug": {"options": options}}))
        assert spec["outputs"] == base["outputs"]
        assert spec["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0
