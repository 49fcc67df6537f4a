"""anpd in the engines: greedy output identical to plain decoding (reference engine and vLLM).

The four tests (tiny model and SmolLM2, reference engine and vLLM) come from
:class:`specplug.testing.engines.MethodEngineConformance`; see its docstring.
"""

from specplug.testing.engines import MethodEngineConformance


class TestAnpdInEngines(MethodEngineConformance):
    method = "anpd"
    options = {"min_n": 2, "max_n": 4}
