"""specplug-ngrammys's wiring: entry point, registration, card and options, and ``specplug.vllm.ngrammys``."""

import pytest

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_ngrammys import NgrammysOptions, NgrammysProposer

BAD_OPTIONS = [
    ({"num_drafts": 0}, "num_drafts"),
    ({"topk": 0}, "topk"),
    ({"min_ngram": 3, "max_ngram": 2}, "max_ngram (2) must be >= min_ngram (3)"),
    ({"num_draft": 2}, "num_draft"),
]


class TestNgrammysRegistration(MethodRegistrationConformance):
    method = "ngrammys"
    distribution = "specplug-ngrammys"
    plugin_module = "specplug_ngrammys.plugin"
    options_class = NgrammysOptions
    proposer_class = NgrammysProposer
    tree = True
    options = {"num_drafts": 2}
    bad_options = BAD_OPTIONS


class TestNgrammysVllmAdapter(VllmAdapterConformance):
    method = "ngrammys"
    bad_options = BAD_OPTIONS
    vocab_size = 49152  # the tiny model's (SmolLM2's tokenizer), so the bigram chains stay inside it

    @pytest.fixture
    def method_options(self, tmp_path_factory):
        from specplug.testing.vllm import session_tiny_model_dir

        return {"model": session_tiny_model_dir(tmp_path_factory)}
