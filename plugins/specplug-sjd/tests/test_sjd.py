"""SJD: the Jacobi update, greedy = plain greedy, options."""

import numpy as np
import pytest

from specplug.methods import OptionsError
from specplug.protocols import Draft, Need, ProposalRequest, StepFeedback
from specplug.registry import get_registry
from specplug.testing import assert_greedy_lossless, tiny_llama
from specplug_sjd.proposer import SJDOptions, SJDProposer, next_iterate


def test_next_iterate_samples_the_rows_after_the_bonus_with_their_q():
    rows = np.eye(5)[[1, 2, 3, 4]]  # one-hot target rows: after the root, after guesses 0, 1, 2
    tokens, q = next_iterate(rows, num_accepted=1, rng=np.random.default_rng(0))
    # guess 0 accepted, the bonus took position 1; rows 2 and 3 guess the two positions after it
    assert tokens == [3, 4]
    assert np.array_equal(q, rows[2:])
    assert next_iterate(rows, num_accepted=3, rng=np.random.default_rng(0))[0] == []


def test_next_iterate_draws_from_the_rows():
    row = np.array([0.0, 0.25, 0.75, 0.0])
    rng = np.random.default_rng(1)
    draws = [next_iterate(np.stack([row, row]), 0, rng)[0][0] for _ in range(4000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert freq[0] == 0 and freq[3] == 0 and abs(freq[2] - 0.75) < 0.03


def test_proposer_window_follows_the_feedback():
    sjd = SJDProposer(SJDOptions(window=4, init="random", init_low=0, init_high=3))
    sjd.start_request("r", np.array([7]))
    first = sjd.propose(ProposalRequest("r", np.array([7]), 1, 4))
    assert first.token_ids.tolist() == [7, 7, 7, 7] and first.probs is None  # vocabulary not known yet
    probs = np.full((5, 10), 0.1)
    probs[2] = np.eye(10)[5]  # after guess 1
    sjd.observe(StepFeedback("r", first, [0], [7, 9], target_probs=probs))
    second = sjd.propose(ProposalRequest("r", np.array([7, 7, 9]), 1, 4))
    assert second.token_ids[0] == 5  # sampled from the row after guess 1 (one-hot)
    assert second.probs.shape == (4, 10)
    assert np.array_equal(second.probs[0], probs[2]) and np.array_equal(second.probs[1], probs[3])
    assert np.allclose(second.probs[3], [1 / 3] * 3 + [0] * 7)  # a fresh guess: uniform on [0, 3)
    assert 0 <= second.token_ids[3] < 3
    sjd.finish_request("r")
    assert not sjd._states


@pytest.mark.parametrize("init", ["random", "repeat_last"])
def test_greedy_output_equals_plain_greedy(init):
    model = tiny_llama(vocab_size=64, seed=3)
    prompts = [[5, 17, 3, 9, 42, 7], [1, 2, 3, 1, 2, 3], [60, 61]]
    out = assert_greedy_lossless(lambda: SJDProposer(SJDOptions(window=5, init=init)), model, prompts, k=5,
                                 max_new_tokens=30, verifiers=("greedy_match", "speculative_sampling"))
    assert all(r.stats.drafted > 0 for r in out["speculative_sampling"])


def test_registered_with_its_need():
    spec = get_registry().method("sjd")
    assert spec.needs == frozenset({Need.target_probs})
    assert isinstance(spec.build({"window": 8}), SJDProposer)


@pytest.mark.parametrize("options, message", [({"window": 0}, "window"), ({"init": "zeros"}, "init"),
                                              ({"init_low": 5, "init_high": 5}, "init_high")])
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(OptionsError, match=message):
        get_registry().method("sjd").validate_options(options)


def test_engine_reports_the_processed_target_distribution():
    """The engine's half of the contract: target_probs rows are the verifier's distributions."""
    import torch

    from specplug.engine import ReferenceEngine
    from specplug.protocols import BaseProposer, SamplingParams
    from specplug.verify import process_logits

    seen = []

    class Recorder(BaseProposer):
        needs = frozenset({Need.target_probs})

        def propose(self, request):
            return Draft.chain([1, 2])

        def observe(self, feedback):
            seen.append(feedback)

    model = tiny_llama(vocab_size=32, seed=2)
    sampling = SamplingParams(temperature=0.7, top_k=5)
    ReferenceEngine(model).generate([[3, 4, 5]], Recorder(), k=2, max_new_tokens=3, sampling=sampling)
    fb = seen[0]
    assert fb.target_probs.shape == (3, 32)
    with torch.inference_mode():
        logits = model(torch.tensor([[3, 4, 5, 1, 2]])).logits[0, 2:].float()
    assert np.allclose(fb.target_probs, process_logits(logits, sampling).double().numpy(), atol=1e-5)
    assert ((fb.target_probs > 0).sum(1) <= 5).all()  # top-k applied
