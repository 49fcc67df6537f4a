"""faster_cascades: the deferral rules on worked examples, their limits in the engine (always deferring is
plain decoding; never deferring keeps every small-model token), bad thresholds, and the wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.methods import OptionsError
from specplug.protocols import Draft, Need, SamplingParams
from specplug.registry import get_registry
from specplug.testing import MethodRegistrationConformance, VerifierRegistrationConformance, greedy_reference, tiny_llama
from specplug_faster_cascades.proposer import CascadeDrafter
from specplug_faster_cascades.rules import CascadeDrafterOptions, DeferralOptions, defers
from specplug_faster_cascades.verifier import SpeculativeCascadeVerifier

GREEDY = SamplingParams()
PROMPTS = [[3, 17, 5, 9, 22], [40, 41, 42, 7]]


def test_deferral_rules_by_hand():
    # small model 0.6 sure, large 0.9 sure, TV 0.5
    assert defers("chow", 0.3, 0.6, 0.9, 0.5) and not defers("chow", 0.5, 0.6, 0.9, 0.5)  # 0.6 < 0.7; not < 0.5
    assert defers("diff", 0.2, 0.6, 0.9, 0.5) and not defers("diff", 0.4, 0.6, 0.9, 0.5)  # 0.6 < 0.7; not < 0.5
    assert defers("opt", 0.4, 0.6, 0.9, 0.5) and not defers("opt", 0.8, 0.6, 0.9, 0.5)  # 0.6 < 0.7; not < 0.5


def test_greedy_verification_keeps_undeferred_tokens_and_corrects_deferred_ones():
    q = torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.0, 0.5]])  # small model: sure of token 1, unsure at the second
    logits = torch.log(torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]))
    draft = Draft.chain([1, 0], probs=q)
    result = SpeculativeCascadeVerifier(DeferralOptions(rule="chow", alpha=0.3)).verify(logits, draft, GREEDY)
    # position 0: max q 0.9 >= 0.7, kept although the large model prefers 0; position 1: 0.5 < 0.7, deferred,
    # and the large model's argmax (2) replaces the drafted 0
    assert result.accepted_nodes == [0] and result.tokens == [1, 2]
    never = SpeculativeCascadeVerifier(DeferralOptions(rule="chow", alpha=1.0)).verify(logits, draft, GREEDY)
    assert never.accepted_nodes == [0, 1] and never.tokens == [1, 0, 2]


def test_a_draft_without_q_is_a_deterministic_proposal():
    """No q (a drafter that gives no distribution): the rule sees q one-hot at the drafted token."""
    logits = torch.tensor([[0.0, 1.0, 0.5], [2.0, 0.0, 0.1], [0.0, 0.0, 3.0]])
    for rule in ("chow", "diff", "opt"):
        verifier = SpeculativeCascadeVerifier(DeferralOptions(rule=rule, alpha=0.3))
        bare = verifier.verify(logits, Draft.chain([1, 0]), GREEDY)
        one_hot = verifier.verify(logits, Draft.chain([1, 0], probs=np.eye(3)[[1, 0]]), GREEDY)
        assert (bare.accepted_nodes, bare.tokens) == (one_hot.accepted_nodes, one_hot.tokens), rule


def _run(model, rule: str, alpha: float):
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = get_registry().method("faster_cascades").build({"layers": "0-1"})
    verifier = get_registry().verifier("faster_cascades").build({"rule": rule, "alpha": alpha})
    return engine.generate(PROMPTS, proposer, verifier, k=4, max_new_tokens=20), verifier


def test_always_deferring_is_plain_decoding_and_never_deferring_keeps_the_small_model():
    model = tiny_llama(vocab_size=64, seed=5, num_layers=3, init_std=0.6)
    plain = greedy_reference(model, PROMPTS, max_new_tokens=20)
    always, v = _run(model, "chow", 0.0)  # defer whenever max q < 1: every position
    assert [r.token_ids for r in always] == [plain[tuple(p)] for p in PROMPTS]
    assert v.deferrals == v.positions > 0
    never, v = _run(model, "chow", 1.0)  # defer when max q < 0: never
    assert v.deferrals == 0 and all(r.stats.accepted == r.stats.drafted for r in never)
    assert [r.token_ids for r in never] != [plain[tuple(p)] for p in PROMPTS]


def test_sampling_runs_and_defers_some_positions():
    model = tiny_llama(vocab_size=64, seed=5, num_layers=3, init_std=0.6)
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = get_registry().method("faster_cascades").build({"layers": "0-1"})
    verifier = SpeculativeCascadeVerifier(DeferralOptions(rule="opt", alpha=0.3))
    results = engine.generate(PROMPTS, proposer, verifier, k=3, max_new_tokens=12, sampling=SamplingParams(temperature=1.0))
    assert all(len(r.token_ids) == 12 for r in results)
    assert 0 < verifier.deferrals < verifier.positions


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_0_1_is_refused(alpha):
    with pytest.raises(OptionsError, match="alpha must lie in"):
        get_registry().verifier("faster_cascades").build({"alpha": alpha})


class TestFasterCascadesRegistration(MethodRegistrationConformance):
    method = "faster_cascades"
    entry_point = "faster_cascades"
    distribution = "specplug-faster-cascades"
    plugin_module = "specplug_faster_cascades.plugin"
    options_class = CascadeDrafterOptions
    proposer_class = CascadeDrafter
    needs = frozenset({Need.target_model})
    options = {"layers": "0-3"}
    bad_options = [({}, "exactly one of 'model'"), ({"layers": "0", "alpha": 0.1}, "alpha")]


class TestFasterCascadesVerifierRegistration(VerifierRegistrationConformance):
    verifier = "faster_cascades"
    entry_point = "faster_cascades"
    distribution = "specplug-faster-cascades"
    plugin_module = "specplug_faster_cascades.plugin"
    options_class = DeferralOptions
    verifier_class = SpeculativeCascadeVerifier
    lossless = False
    options = {"rule": "diff", "alpha": 0.1}
    bad_options = [({"alpha": 2}, "alpha"), ({"rule": "max"}, "rule")]
