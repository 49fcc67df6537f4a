"""Tests of the example plugin, run by CI exactly as the guide shows them."""

import numpy as np
import pytest

from specplug import OptionsError, ProposalRequest
from specplug.catalogue_checks import facet_problems, implementation_problems
from specplug.registry import build_registry
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
def test_plugin_is_found_through_its_entry_point():
    registry = build_registry(strict=False)
    assert "hello_bigram" in registry.methods, registry.problems
    assert registry.method_sources["hello_bigram"].startswith("plugin 'hello'")
    proposer = registry.method("hello_bigram").build({"max_draft": 3})
    assert isinstance(proposer, BigramProposer)


def test_bad_options_are_refused():
    with pytest.raises(OptionsError, match="max_draft"):
        build_registry().method("hello_bigram").build({"max_draft": 0})
# --8<-- [end:test-plugin]


# --8<-- [start:test-card]
def test_card_says_what_the_plugin_registers():
    registry = build_registry(strict=False)
    card, spec = registry.cards["hello_bigram"], registry.methods["hello_bigram"]
    assert facet_problems(card) == []
    assert implementation_problems(card, spec) == []
# --8<-- [end:test-card]
