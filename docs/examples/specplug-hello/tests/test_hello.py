"""Tests of the example plugin, run by CI exactly as the guide shows them."""

import numpy as np

from specplug import ProposalRequest
from specplug.testing import MethodRegistrationConformance, VllmAdapterConformance
from specplug_hello import BigramOptions, BigramProposer


def propose(proposer, token_ids, max_tokens=8, request_id="r"):
    ids = np.asarray(token_ids, dtype=np.int64)
    return proposer.propose(ProposalRequest(request_id, ids, num_prompt_tokens=len(ids), max_tokens=max_tokens))


# --8<-- [start:test-kernel]
def test_follows_latest_bigrams():
    proposer = BigramProposer(BigramOptions())
    proposer.start_request("r", np.array([5, 6, 7, 5, 6, 9, 5]))
    draft = propose(proposer, [5, 6, 7, 5, 6, 9, 5], max_tokens=3)
    assert draft.token_ids.tolist() == [6, 9, 5]


def test_never_more_than_allowed():
    proposer = BigramProposer(BigramOptions(max_draft=4))
    history = [1, 2] * 20
    assert len(propose(proposer, history, max_tokens=10)) == 4  # capped by max_draft
    assert len(propose(proposer, history, max_tokens=2)) == 2  # capped by the engine's budget
# --8<-- [end:test-kernel]


# --8<-- [start:test-engine]
def test_greedy_output_equals_plain_decoding():
    from specplug.testing import assert_greedy_lossless, tiny_llama

    prompts = [[5, 6, 7, 5, 6, 7, 5, 6], [1, 2, 3, 4, 9, 1, 2]]
    results = assert_greedy_lossless(lambda: BigramProposer(BigramOptions()), tiny_llama(seed=1), prompts, k=4)
    assert any(r.stats.drafted for rs in results.values() for r in rs)  # the proposer did draft
# --8<-- [end:test-engine]


def test_unknown_root_gives_empty_draft():
    proposer = BigramProposer(BigramOptions())
    assert len(propose(proposer, [1, 2, 3])) == 0  # 3 was never followed by anything
    assert len(propose(proposer, [7], request_id="short")) == 0


def test_reads_only_new_tokens_and_resets_on_reuse():
    proposer = BigramProposer(BigramOptions())
    assert propose(proposer, [1, 2, 1]).token_ids.tolist()[:1] == [2]
    assert propose(proposer, [1, 2, 1, 3, 1]).token_ids.tolist()[:1] == [3]  # 1 -> 3 is newer
    # A shorter history under the same id is a new request: the old table must not leak into it.
    assert len(propose(proposer, [4, 1])) == 0


def test_finish_request_drops_state():
    proposer = BigramProposer(BigramOptions())
    proposer.start_request("r", np.array([1, 2]))
    propose(proposer, [1, 2, 1])
    proposer.finish_request("r")
    assert proposer._states == {}


# --8<-- [start:test-plugin]
class TestHelloRegistration(MethodRegistrationConformance):
    """Entry point, registration, card and options: the tests come from specplug.testing."""

    method = "hello_bigram"
    entry_point = "hello"
    distribution = "specplug-hello"
    plugin_module = "specplug_hello.plugin"
    options_class = BigramOptions
    proposer_class = BigramProposer
    options = {"max_draft": 3}
    bad_options = [({"max_draft": 0}, "max_draft"), ({"max_drafts": 3}, "max_drafts")]


class TestHelloInVllm(VllmAdapterConformance):
    """The method behind vLLM's custom_class path, specplug.vllm.hello_bigram (no vLLM needed)."""

    method = "hello_bigram"
    bad_options = TestHelloRegistration.bad_options
# --8<-- [end:test-plugin]
