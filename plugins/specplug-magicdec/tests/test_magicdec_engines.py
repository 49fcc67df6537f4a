"""magicdec in the reference engine: greedy output identical to plain decoding, with a KV budget smaller than
the context so the draft really runs on the sparse cache (tiny model; SmolLM2 in the slow tier)."""

from specplug.testing.engines import MethodEngineConformance


class TestMagicDecInEngines(MethodEngineConformance):
    method = "magicdec"
    options = {"kv_budget": 8, "sinks": 2}
    # vLLM cannot host it (no access to the target's weights or KV cache from a custom_class drafter)
    test_vllm_greedy_lossless_on_a_tiny_model = None
    test_vllm_greedy_lossless_on_smollm2 = None
