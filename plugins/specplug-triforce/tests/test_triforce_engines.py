"""triforce in the reference engine: greedy output identical to plain decoding, with a KV budget smaller than
the prompts so the middle level really runs over the retrieval cache (tiny model; SmolLM2 in the slow tier)."""

from specplug.testing.engines import MethodEngineConformance


class TestTriForceInEngines(MethodEngineConformance):
    method = "triforce"
    options = {"layers": "0", "kv_budget": 16, "chunk_size": 4, "draft_kv_budget": 16, "draft_sinks": 2}
    # SmolLM2: greedy match only (each verifier costs a full run of three levels); the tiny-model test runs every verifier
    smollm2_verifiers = ("greedy_match",)
    # vLLM cannot host it (no access to the target's weights or KV cache from a custom_class drafter)
    test_vllm_greedy_lossless_on_a_tiny_model = None
    test_vllm_greedy_lossless_on_smollm2 = None
