"""specplug-draft's wiring: entry point, registration, card and options of ``sps``.

The tests come from :class:`specplug.testing.MethodRegistrationConformance`; this module says what
the plugin registers. (vLLM runs draft models natively: ``specplug vllm-config sps`` prints that config.)
"""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_draft.proposer import DraftOptions, DraftProposer


class TestSpsRegistration(MethodRegistrationConformance):
    method = "sps"
    entry_point = "sps"
    distribution = "specplug-draft"
    plugin_module = "specplug_draft.plugin"
    options_class = DraftOptions
    proposer_class = DraftProposer
    needs = frozenset({Need.target_model})
    options = {"layers": "0", "num_draft_tokens": 2}
    bad_options = [
        ({}, "exactly one of 'model'"),
        ({"model": "x", "layers": "0"}, "exactly one of 'model'"),
        ({"layers": "0", "dtype": "float16"}, "'dtype' applies"),
        ({"layers": "0", "vocab_file": "v.json"}, "needs 'vocab_size'"),
        ({"layers": "0", "stop_below": 1.5}, "stop_below"),
        ({"layers": "0", "draft_model": "x"}, "draft_model"),
    ]
