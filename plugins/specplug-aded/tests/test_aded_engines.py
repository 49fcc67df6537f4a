"""aded in the engines: greedy output identical to plain decoding (reference engine: whole trees; vLLM:
the most visited path). The SmolLM2 vLLM run is left to sam_decoding's tests (one per family)."""

from specplug.testing.engines import MethodEngineConformance


class TestAdedInEngines(MethodEngineConformance):
    method = "aded"
    options = {"simulations": 16}
    smollm2_verifiers = ("greedy_match", "tree_verification")
    test_vllm_greedy_lossless_on_smollm2 = None
