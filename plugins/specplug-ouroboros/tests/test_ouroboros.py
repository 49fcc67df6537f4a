"""Ouroboros: registration, greedy output equal to plain decoding, and the phrase pool: what it
takes from verification and history, and that a phrase the draft model agrees with saves draft
forwards without changing the draft."""

from __future__ import annotations

import numpy as np
import pytest

from specplug.protocols import Draft, Need, ProposalRequest, StepFeedback
from specplug.testing import MethodRegistrationConformance
from specplug_ouroboros.proposer import OuroborosOptions, OuroborosProposer, PhrasePool, agreeing_runs


class TestOuroborosRegistration(MethodRegistrationConformance):
    method = "ouroboros"
    entry_point = "ouroboros"
    distribution = "specplug-ouroboros"
    plugin_module = "specplug_ouroboros.plugin"
    options_class = OuroborosOptions
    proposer_class = OuroborosProposer
    needs = frozenset({Need.target_model, Need.target_predictions})
    options = {"layers": "0", "phrase_len": 3}
    bad_options = [
        ({}, "exactly one of 'model'"),
        ({"layers": "0", "phrase_len": 1}, "phrase_len"),
        ({"layers": "0", "pool_width": 0}, "pool_width"),
        ({"layers": "0", "gamma": 3}, "gamma"),
    ]


def test_agreeing_runs_past_the_rejection():
    assert agreeing_runs(np.array([5, 6, 7, 8, 9]), np.array([5, 1, 7, 8, 2, 0]), accepted=1) == [[7, 8]]
    assert agreeing_runs(np.array([5, 6, 7]), np.array([5, 6, 7, 1]), accepted=3) == []  # all accepted: nothing past
    assert agreeing_runs(np.array([1, 2, 3, 4]), np.array([0, 2, 3, 4, 9]), accepted=0) == [[2, 3, 4]]


def test_pool_keeps_the_most_recent_phrases_per_first_token():
    pool = PhrasePool(width=2, max_keys=2)
    for phrase in ([1, 2, 3], [1, 4, 5], [1, 2, 3], [1, 6, 7]):
        pool.add(phrase)
    assert pool.get(1) == [(1, 6, 7), (1, 2, 3)]
    pool.add([8, 9])
    pool.add([10, 11])  # a third first token evicts the least recently used (1)
    assert pool.get(1) == [] and pool.get(10) == [(10, 11)]


@pytest.fixture(scope="module")
def tiny():
    from specplug.testing import tiny_llama

    return tiny_llama(seed=11)


def test_greedy_output_equals_plain_decoding(tiny):
    from specplug.testing.lossless import assert_greedy_lossless, total_accepted

    made = []

    def factory():
        made.append(OuroborosProposer(OuroborosOptions(layers="0-1", phrase_len=3, draft_steps=3)))
        return made[-1]

    prompts = [[1, 5, 9, 1, 5, 9, 1, 5], [3, 3, 4, 3, 3, 4, 2]]
    results = assert_greedy_lossless(factory, tiny, prompts, k=6, max_new_tokens=24)
    assert total_accepted(results) > 0
    assert made[-1].counts.from_phrases > 0  # the pool was used


def test_a_phrase_the_draft_agrees_with_saves_forwards_and_changes_nothing(tiny):
    """The same request drafted with an empty pool and with the draft model's own continuation in the
    pool: identical drafts, fewer draft forwards."""
    from specplug.engine import ReferenceEngine

    info = ReferenceEngine(tiny).target_info()
    prompt = np.array([7, 3, 9, 4, 2, 8], dtype=np.int64)

    def drafter():
        proposer = OuroborosProposer(OuroborosOptions(layers="0-1", phrase_len=4, draft_steps=6))
        proposer.bind_target(info)
        proposer.start_request("r", prompt)
        proposer.pool = PhrasePool(4, 100)  # forget the prompt's phrases: this test fills the pool itself
        return proposer

    plain = drafter()
    expected = plain.propose(ProposalRequest("r", prompt, len(prompt), max_tokens=6)).token_ids.tolist()
    assert plain.counts.from_phrases == 0 and plain.counts.draft_forwards == 1 + 6
    pooled = drafter()
    pooled.pool.add(expected[0:4])  # the draft model's own next four tokens, as a phrase
    draft = pooled.propose(ProposalRequest("r", prompt, len(prompt), max_tokens=6)).token_ids.tolist()
    assert draft == expected
    assert pooled.counts.from_phrases >= 3
    assert pooled.counts.draft_forwards < plain.counts.draft_forwards


def test_observe_mines_the_rejected_tail():
    proposer = OuroborosProposer(OuroborosOptions(layers="0"))
    draft = Draft.chain([5, 6, 7, 8, 9])
    proposer.observe(StepFeedback("r", draft, [0], [5, 1], target_predictions=np.array([5, 1, 7, 8, 2, 0])))
    assert proposer.pool.get(7) == [(7, 8)]
