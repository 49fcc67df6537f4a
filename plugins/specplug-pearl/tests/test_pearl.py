"""PEARL: registration, greedy output equal to plain decoding, and the two strategies' own effects:
pre-verify stops a wrong draft after its first token, post-verify keeps a right draft going with no
drafting step of its own."""

from __future__ import annotations

import math

import pytest

from specplug.protocols import Need, SamplingParams
from specplug.testing import MethodRegistrationConformance
from specplug_pearl.proposer import PearlOptions, PearlProposer


class TestPearlRegistration(MethodRegistrationConformance):
    method = "pearl"
    entry_point = "pearl"
    distribution = "specplug-pearl"
    plugin_module = "specplug_pearl.plugin"
    options_class = PearlOptions
    proposer_class = PearlProposer
    needs = frozenset({Need.target_model})
    options = {"layers": "0", "gamma": 3}
    bad_options = [
        ({}, "exactly one of 'model'"),
        ({"model": "x", "layers": "0"}, "exactly one of 'model'"),
        ({"layers": "0", "gamma": 0}, "gamma"),
        ({"layers": "0", "window": 3}, "window"),
    ]


@pytest.fixture(scope="module")
def tiny():
    from specplug.testing import tiny_llama

    return tiny_llama(seed=7)


PROMPTS = [[1, 5, 9, 1, 5, 9, 1, 5], [3, 3, 4, 3, 3, 4, 2]]


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
def test_greedy_output_equals_plain_decoding(tiny, parallel):
    from specplug.testing.lossless import assert_greedy_lossless

    made = []

    def factory():
        made.append(PearlProposer(PearlOptions(layers="0", gamma=3, parallel=parallel)))
        return made[-1]

    assert_greedy_lossless(factory, tiny, PROMPTS, k=8, max_new_tokens=24)
    counts = made[-1].counts
    assert counts.pre_phases > 0 and counts.post_phases > 0


def _run(model, layers: str, gamma: int, parallel: bool, new: int = 25):
    from specplug.engine import ReferenceEngine

    proposer = PearlProposer(PearlOptions(layers=layers, gamma=gamma, parallel=parallel))
    (result,) = ReferenceEngine(model).generate([PROMPTS[0]], proposer, "greedy_match", k=16, max_new_tokens=new)
    return proposer.counts, result


def test_pre_verify_stops_a_wrong_draft_after_its_first_token(tiny):
    """A one-layer draft of a random model is often wrong at once: every such pre-verify phase drafts
    one token, not the window (without the early stop every phase would draft gamma)."""
    counts, _ = _run(tiny, "0", gamma=4, parallel=False)
    accepted_first = counts.pre_phases - counts.pre_rejected
    assert counts.pre_rejected > 0
    assert counts.pre_drafted == counts.pre_rejected + 4 * accepted_first


def test_post_verify_keeps_a_right_draft_going_without_drafting_steps(tiny):
    """With the whole target as its draft every token is right: after the first step (pre-verify),
    every step is post-verify and emits gamma tokens; no step is spent drafting alone."""
    gamma, new = 4, 25
    counts, result = _run(tiny, "0-1", gamma=gamma, parallel=True, new=new)
    assert counts.pre_phases == 1 and counts.pre_rejected == 0
    assert result.stats.steps == 1 + math.ceil((new - 1) / gamma)
    assert counts.post_chained >= result.stats.steps - 2


def test_sampling_is_refused(tiny):
    from specplug.engine import ReferenceEngine

    proposer = PearlProposer(PearlOptions(layers="0", gamma=2))
    with pytest.raises(ValueError, match="greedy"):
        ReferenceEngine(tiny).generate([PROMPTS[0]], proposer, k=4, max_new_tokens=4, sampling=SamplingParams(temperature=1.0))
