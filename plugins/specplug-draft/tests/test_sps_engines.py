"""sps in the engines: greedy output identical to plain decoding.

Reference engine: the tests of :class:`specplug.testing.engines.MethodEngineConformance` with a
draft made of the target's first layer (tiny model) or 24 of its 30 layers (SmolLM2). vLLM runs
sps natively (``"method": "draft_model"``) with a folder from ``specplug models derive``, so the
vLLM tests replace the base class's custom_class ones.
"""

from __future__ import annotations

import pytest

from specplug.testing import repetitive_prompts, run_vllm_job, spec_bench_chat_prompts, tiny_llama, total_accepted
from specplug.testing.engines import MethodEngineConformance


class TestSpsInTheReferenceEngine(MethodEngineConformance):
    method = "sps"
    options = {"layers": "0"}

    @pytest.mark.slow
    def test_greedy_lossless_on_smollm2_spec_bench(self):
        self.options = {"layers": "0-11,18-29"}  # 24 of SmolLM2's 30 layers (fewer are rarely accepted)
        super().test_greedy_lossless_on_smollm2_spec_bench()

    @pytest.mark.vllm
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path):
        from specplug.models.derive import derive_model
        from specplug.integrations.vllm.commands import speculative_configs
        from specplug.testing import tiny_model_dir

        model = tiny_model_dir(tmp_path / "tiny", num_layers=2, hidden=128)
        draft = derive_model(model, "0", tmp_path / "draft")
        spec = speculative_configs("sps", 4, draft_model=str(draft))["native"]["speculative_config"]
        assert spec == {"method": "draft_model", "num_speculative_tokens": 4, "model": str(draft)}
        job = {"model": str(model), "prompts": repetitive_prompts(4, 40000), "max_tokens": 24}
        base = run_vllm_job(tmp_path, job)
        out = run_vllm_job(tmp_path, dict(job, speculative_config=spec))
        assert out["outputs"] == base["outputs"]
        assert out["metrics"]["vllm:spec_decode_num_draft_tokens"] > 0

    @pytest.mark.vllm
    @pytest.mark.slow
    def test_vllm_greedy_lossless_on_smollm2(self, tmp_path):
        from transformers import AutoTokenizer

        from specplug.models.derive import derive_model
        from specplug.models import resolve_model

        model = resolve_model("smollm2-135m")
        draft = derive_model("smollm2-135m", "0-11,18-29")  # 24 of 30 layers; cached after the first run
        prompts = spec_bench_chat_prompts(AutoTokenizer.from_pretrained(model), 3)
        job = {"model": model, "prompts": prompts, "max_tokens": 48, "max_model_len": 1024, "ignore_eos": False}
        spec = {"method": "draft_model", "model": str(draft), "num_speculative_tokens": 5}
        base = run_vllm_job(tmp_path, job)
        out = run_vllm_job(tmp_path, dict(job, speculative_config=spec))
        assert out["outputs"] == base["outputs"]
        assert out["metrics"]["vllm:spec_decode_num_accepted_tokens"] > 0


def test_a_draft_folder_with_a_reduced_vocabulary_is_lossless(tmp_path):
    """A draft loaded from a folder (the target's layer 0, saved), scoring 40 of 128 ids."""
    import json

    from specplug.models.derive import derive_model
    from specplug.registry import get_registry
    from specplug.testing import assert_greedy_lossless

    model = tiny_llama(vocab_size=128, seed=1)
    model.save_pretrained(str(tmp_path / "target"))
    draft = derive_model(tmp_path / "target", "0", tmp_path / "draft")
    (tmp_path / "vocab.json").write_text(json.dumps(list(range(3, 128))))
    options = {"model": str(draft), "vocab_size": 40, "vocab_file": str(tmp_path / "vocab.json")}
    spec = get_registry().method("sps")
    prompts = repetitive_prompts(3, 40) + [[5, 9, 17]]
    out = assert_greedy_lossless(lambda: spec.build(options), model, prompts, k=4, max_new_tokens=32)
    assert total_accepted(out) > 0
