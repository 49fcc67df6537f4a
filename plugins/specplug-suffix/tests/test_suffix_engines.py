"""suffix in the engines: greedy output identical to plain decoding (reference engine and vLLM).

The four tests (tiny model and SmolLM2, reference engine and vLLM) come from
:class:`specplug.testing.engines.MethodEngineConformance`; see its docstring.
"""

from specplug.testing.engines import MethodEngineConformance


class TestSuffixInEngines(MethodEngineConformance):
    method = "suffix"
    options = {"max_spec_factor": 2.0}
    smollm2_verifiers = ("greedy_match", "tree_verification")  # tree drafts
