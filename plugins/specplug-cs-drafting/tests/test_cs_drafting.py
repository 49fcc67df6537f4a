"""cs_drafting: Max-Gram on worked examples; the vertical cascade's tokens are its top drafter's own greedy
chain, built from exactly what the lower level fed it; the horizontal cascade hands later positions to
Max-Gram; greedy output equals plain decoding; an empty cascade and mismatched lengths are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.kit.drafting import DraftCache, draft_chain, model_view
from specplug.methods import OptionsError
from specplug.protocols import Need, ProposalRequest
from specplug.registry import get_registry
from specplug.testing import MethodRegistrationConformance, assert_greedy_lossless, tiny_llama
from specplug_cs_drafting.maxgram import maxgram_continue
from specplug_cs_drafting.options import CascadeOptions
from specplug_cs_drafting.proposer import CascadeProposer

PROMPTS = [[3, 17, 5, 9, 22, 3, 17, 5], [40, 41, 42, 7, 40, 41]]


def test_maxgram_copies_what_followed_the_longest_match():
    # suffix [1, 2] occurred at 0 (followed by 3) and at 4 (followed by 9): the most recent wins
    assert maxgram_continue([1, 2, 3, 7, 1, 2, 9, 5, 1, 2], 1) == [9]
    # it extends the match with its own tokens: after 9 comes 5, then 1
    assert maxgram_continue([1, 2, 3, 7, 1, 2, 9, 5, 1, 2], 3) == [9, 5, 1]
    # a longer match beats a shorter one: [7, 1] matched (followed by 4), although [1] alone last preceded 8
    assert maxgram_continue([7, 1, 4, 1, 8, 7, 1], 1) == [4]
    assert maxgram_continue([1, 2, 3], 4) == []  # nothing repeats: nothing proposed


def _tiny():
    return tiny_llama(vocab_size=48, seed=3, num_layers=4, init_std=0.6)


def _build(**options):
    return get_registry().method("cs_drafting").build(options)


def test_vertical_cascade_drafts_are_the_top_drafters_greedy_chain_fed_by_the_lower_level():
    model = _tiny()
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = _build(drafters=["0-2", "0"], lengths=[6, 0, 0], inner_k=3)
    proposer.bind_target(engine.target_info())
    top_alone = DraftCache(model_view(model, [0, 1, 2]))
    for i, prompt in enumerate(PROMPTS):
        proposer.start_request(f"r{i}", np.asarray(prompt))
        draft = proposer.propose(ProposalRequest(f"r{i}", np.asarray(prompt), len(prompt), 6))
        top_alone.reset()
        assert draft.token_ids.tolist() == draft_chain(top_alone, prompt, 6).token_ids.tolist()
        top, middle, _ = proposer.levels(f"r{i}")
        # every inner step of the top level kept a prefix of exactly what the middle level proposed,
        # and the middle level's proposals are its own greedy chain after the top level's tokens so far
        rebuilt, done = [], []
        middle_alone = DraftCache(model_view(model, [0]))
        for step in top.trace:
            if step.proposed:
                middle_alone.reset()
                assert list(step.proposed) == draft_chain(middle_alone, prompt + done, len(step.proposed)).token_ids.tolist()
            done += list(step.proposed[: step.kept]) + [step.own]
            rebuilt = done
        assert rebuilt[:6] == draft.token_ids.tolist()
    # the lower level saved the top level forwards: fewer top forwards than top tokens drafted
    assert top.forwards < 6 * len(PROMPTS), "the vertical cascade never accepted a lower-level token"


def test_horizontal_cascade_gives_later_positions_to_maxgram():
    model = _tiny()
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = _build(drafters=["0-1"], lengths=[2, 4])
    proposer.bind_target(engine.target_info())
    prompt = [5, 6, 7, 8, 5, 6, 7, 8, 5, 6]
    proposer.start_request("r", np.asarray(prompt))
    draft = proposer.propose(ProposalRequest("r", np.asarray(prompt), len(prompt), 6)).token_ids.tolist()
    top = proposer.levels("r")[0]
    head = draft[:2]
    assert head == draft_chain(DraftCache(model_view(model, [0, 1])), prompt, 2).token_ids.tolist()
    assert draft[2:] == maxgram_continue(prompt + head, 4)  # the tail is Max-Gram's, after the top drafter's head
    assert top.forwards >= 1


def test_greedy_output_equals_plain_decoding():
    model = _tiny()
    assert_greedy_lossless(lambda: _build(drafters=["0-2", "0"], lengths=[3, 1, 2], inner_k=2), model, PROMPTS,
                           k=6, max_new_tokens=20, eos_token_id=[])


@pytest.mark.parametrize("bad, words", [
    ({"drafters": []}, "cascade is empty"),
    ({"drafters": [""], "lengths": [1, 1]}, "drafter in 'drafters' is empty"),
    ({"drafters": ["0-3"], "lengths": [3]}, "one entry per level"),
    ({"drafters": ["0-3"], "lengths": [0, 3]}, "lengths[0] >= 1"),
    ({"inner_k": 0}, "inner_k"),
])
def test_bad_cascades_are_refused(bad, words):
    with pytest.raises(OptionsError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _build(**bad)


class TestCsDraftingRegistration(MethodRegistrationConformance):
    method = "cs_drafting"
    entry_point = "cs_drafting"
    distribution = "specplug-cs-drafting"
    plugin_module = "specplug_cs_drafting.plugin"
    options_class = CascadeOptions
    proposer_class = CascadeProposer
    needs = frozenset({Need.target_model})
    options = {"drafters": ["0-3", "0"], "lengths": [3, 1, 2]}
    bad_options = [({"drafters": []}, "cascade is empty"), ({"lengths": [1]}, "one entry per level")]
