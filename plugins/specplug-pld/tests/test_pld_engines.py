"""pld in the engines: greedy output identical to plain decoding (reference engine and vLLM).

The four tests (tiny model and SmolLM2, reference engine and vLLM) come from
:class:`specplug.testing.engines.MethodEngineConformance`; see its docstring.
"""

from specplug.testing.engines import MethodEngineConformance


class TestPldInEngines(MethodEngineConformance):
    method = "pld"
    options = {"min_ngram": 1, "max_ngram": 3}
