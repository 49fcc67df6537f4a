"""specplug-rest's wiring: entry point, registration, card and options, and rest behind ``specplug.vllm.rest``.

The tests come from specplug's conformance suites (:mod:`specplug.testing.registration`,
:mod:`specplug.testing.adapter`); this module says what the plugin registers. REST's options name a
datastore, so both classes build one (from the adapter test's prompts, so that drafts are retrieved).
"""

import numpy as np
import pytest

from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance, repetitive_prompts
from specplug_rest.datastore import write_datastore
from specplug_rest.proposer import RestOptions, RestProposer

TOK = {"name": "tiny-random", "vocab_size": 128, "fingerprint": "sha256:tiny"}
BAD_OPTIONS = [({}, "datastore"), ({"datastore": "ds", "max_depth": 0}, "max_depth"),
               ({"datastore": "ds", "max_nodes": 5000}, "max_nodes"), ({"datastore": "ds", "depth": 3}, "depth")]


def datastore_options(folder) -> dict:
    """Options naming a datastore of the adapter test's prompts plus random documents."""
    rng = np.random.default_rng(0)
    documents = repetitive_prompts(3, TOK["vocab_size"], seed=7) + [rng.integers(3, 128, 200).tolist() for _ in range(3)]
    write_datastore(folder / "ds", documents, TOK)
    return {"datastore": str(folder / "ds"), "min_suffix_len": 1, "max_nodes": 8}


class TestRestRegistration(MethodRegistrationConformance):
    method = "rest"
    distribution = "specplug-rest"
    plugin_module = "specplug_rest.plugin"
    options_class = RestOptions
    proposer_class = RestProposer
    tree = True
    bad_options = BAD_OPTIONS

    @pytest.fixture
    def method_options(self, tmp_path):
        return datastore_options(tmp_path)


class TestRestVllmAdapter(VllmAdapterConformance):
    method = "rest"
    vocab_size = TOK["vocab_size"]
    bad_options = [(dict(options, datastore="ds"), key) for options, key in BAD_OPTIONS[1:]]

    @pytest.fixture
    def method_options(self, tmp_path):
        return datastore_options(tmp_path)
