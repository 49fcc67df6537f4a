"""specplug-sam-decoding's wiring: entry point, registration, card and options, and ``specplug.vllm.sam_decoding``."""

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_sam_decoding import SamOptions, SamProposer

BAD_OPTIONS = [
    ({"min_match": 0}, "min_match"),
    ({"num_pred_tokens": 0}, "num_pred_tokens"),
    ({"corpus": "/nonexistent/corpus.npy"}, "does not exist"),
    ({"static_margn": 1}, "static_margn"),
]


class TestSamRegistration(MethodRegistrationConformance):
    method = "sam_decoding"
    distribution = "specplug-sam-decoding"
    plugin_module = "specplug_sam_decoding.plugin"
    options_class = SamOptions
    proposer_class = SamProposer
    options = {"min_match": 2}
    bad_options = BAD_OPTIONS


class TestSamVllmAdapter(VllmAdapterConformance):
    method = "sam_decoding"
    options = {"min_match": 1}
    bad_options = BAD_OPTIONS
