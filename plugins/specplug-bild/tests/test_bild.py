"""bild: the rollback rule on worked examples, the fallback policy stopping the small model, both
thresholds' limits in the engine (rollback 0 is plain decoding; a huge rollback keeps every small-model
token), bad thresholds, and the wiring."""

from __future__ import annotations

import math

import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.methods import OptionsError
from specplug.protocols import Draft, SamplingParams
from specplug.registry import get_registry
from specplug.testing import MethodRegistrationConformance, VerifierRegistrationConformance, greedy_reference, tiny_llama
from specplug_bild.policies import BildOptions, BildVerifierOptions
from specplug_bild.proposer import BildProposer
from specplug_bild.verifier import BildRollbackVerifier

GREEDY = SamplingParams()
PROMPTS = [[3, 17, 5, 9, 22], [40, 41, 42, 7]]


def _logits(rows: list[list[float]]) -> torch.Tensor:
    """Logits whose softmax is the given probability rows."""
    return torch.log(torch.tensor(rows, dtype=torch.float32))


def test_rollback_at_the_first_token_beyond_the_threshold():
    # the large model's distributions at the root and after each of the 3 drafted tokens (vocabulary 3)
    logits = _logits([[0.5, 0.3, 0.2],  # node 0 = token 1: -log 0.3 = 1.20 nats, kept at rollback 1.5
                      [0.1, 0.1, 0.8],  # node 1 = token 0: -log 0.1 = 2.30 nats, rolled back
                      [0.7, 0.2, 0.1],
                      [0.2, 0.2, 0.6]])
    draft = Draft.chain([1, 0, 0])
    result = BildRollbackVerifier(BildVerifierOptions(rollback=1.5)).verify(logits, draft, GREEDY)
    assert result.accepted_nodes == [0]
    assert result.tokens == [1, 2]  # token 1 kept although the large model prefers 0; node 1 replaced by its argmax
    # a wider margin keeps everything and the large model adds its own token after the draft
    result = BildRollbackVerifier(BildVerifierOptions(rollback=2.5)).verify(logits, draft, GREEDY)
    assert result.accepted_nodes == [0, 1, 2] and result.tokens == [1, 0, 0, 2]
    # at rollback 0 every token is rolled back: the large model's own first token
    result = BildRollbackVerifier(BildVerifierOptions(rollback=0.0)).verify(logits, draft, GREEDY)
    assert result.accepted_nodes == [] and result.tokens == [0]


def _tiny():
    return tiny_llama(vocab_size=64, seed=5, num_layers=3, init_std=0.6)


def _run(model, fallback: float, rollback: float, k: int = 4, tokens: int = 24):
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer = get_registry().method("bild").build({"layers": "0-1", "fallback": fallback})
    verifier = get_registry().verifier("bild").build({"rollback": rollback})
    return engine.generate(PROMPTS, proposer, verifier, k=k, max_new_tokens=tokens)


def test_rollback_zero_is_plain_decoding_and_a_huge_rollback_keeps_the_small_model():
    model = _tiny()
    plain = greedy_reference(model, PROMPTS, max_new_tokens=24)
    strict = _run(model, fallback=0.0, rollback=0.0)
    assert [r.token_ids for r in strict] == [plain[tuple(p)] for p in PROMPTS]
    assert sum(r.stats.accepted for r in strict) == 0
    loose = _run(model, fallback=0.0, rollback=1e9)
    # fallback 0 never stops the small model, so every step drafts its full budget and keeps it all
    assert all(r.stats.accepted == r.stats.drafted > 0 for r in loose)
    assert [r.token_ids for r in loose] != [plain[tuple(p)] for p in PROMPTS], "BiLD is lossy: the small model's tokens stay"


def test_the_fallback_policy_stops_the_small_model():
    model = _tiny()
    never = _run(model, fallback=1.0, rollback=1e9)  # no probability reaches 1: the large model decodes alone
    assert sum(r.stats.drafted for r in never) == 0
    some = _run(model, fallback=0.6, rollback=1e9)
    always = _run(model, fallback=0.0, rollback=1e9)
    drafted = [sum(r.stats.drafted for r in rs) for rs in (never, some, always)]
    assert drafted[0] < drafted[1] < drafted[2], drafted
    # every drafted token had confidence >= fallback: check the first step's draft by hand
    proposer = BildProposer(BildOptions(layers="0-1", fallback=0.6))
    engine = ReferenceEngine(model, eos_token_id=[])
    proposer.bind_target(engine.target_info())
    from specplug.protocols import ProposalRequest
    import numpy as np

    proposer.start_request("r", np.asarray(PROMPTS[0]))
    draft = proposer.propose(ProposalRequest("r", np.asarray(PROMPTS[0]), len(PROMPTS[0]), 4, sampling=GREEDY))
    small = proposer.small.draft_model
    ids = PROMPTS[0] + draft.token_ids.tolist()
    with torch.inference_mode():
        probs = torch.softmax(small(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    n = len(PROMPTS[0])
    confidences = probs[n - 1 :, :].max(-1).values.tolist()  # at the root and after each drafted token
    assert all(c >= 0.6 for c in confidences[: len(draft)])
    if len(draft) < 4:
        assert confidences[len(draft)] < 0.6, "the small model stopped although it was confident"


def test_sampling_emits_the_large_models_sample_after_a_rollback():
    logits = _logits([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]])
    verifier = BildRollbackVerifier(BildVerifierOptions(rollback=1.0))
    gen = torch.Generator().manual_seed(0)
    draws = [verifier.verify(logits, Draft.chain([2]), SamplingParams(temperature=1.0), gen).tokens for _ in range(50)]
    assert all(d[0] in (0, 1, 2) and len(d) == 1 for d in draws)  # token 2 (4.6 nats) always rolled back
    assert sum(d[0] == 0 for d in draws) > 40


@pytest.mark.parametrize("bad, word", [({"layers": "0", "fallback": 1.5}, "fallback"),
                                       ({"layers": "0", "fallback": -0.1}, "fallback"),
                                       ({"layers": "0", "fallback": math.nan}, "fallback")])
def test_fallback_outside_0_1_is_refused(bad, word):
    with pytest.raises(OptionsError, match=word):
        get_registry().method("bild").build(bad)


def test_negative_rollback_is_refused():
    with pytest.raises(OptionsError, match="rollback must be >= 0"):
        get_registry().verifier("bild").build({"rollback": -1})


def test_tree_drafts_are_refused():
    with pytest.raises(ValueError, match="chain"):
        BildRollbackVerifier().verify(torch.zeros(3, 4), Draft([1, 2], parents=[-1, -1]), GREEDY)


class TestBildRegistration(MethodRegistrationConformance):
    method = "bild"
    entry_point = "bild"
    distribution = "specplug-bild"
    plugin_module = "specplug_bild.plugin"
    options_class = BildOptions
    proposer_class = BildProposer
    from specplug.protocols import Need

    needs = frozenset({Need.target_model})
    options = {"layers": "0-3", "fallback": 0.5}
    bad_options = [({}, "exactly one of 'model'"), ({"layers": "0", "fallback": 2}, "fallback"),
                   ({"layers": "0", "rollback": 1}, "rollback")]


class TestBildVerifierRegistration(VerifierRegistrationConformance):
    verifier = "bild"
    entry_point = "bild"
    distribution = "specplug-bild"
    plugin_module = "specplug_bild.plugin"
    options_class = BildVerifierOptions
    verifier_class = BildRollbackVerifier
    lossless = False
    options = {"rollback": 3.0}
    bad_options = [({"rollback": -0.5}, "rollback"), ({"fallback": 0.5}, "fallback")]
