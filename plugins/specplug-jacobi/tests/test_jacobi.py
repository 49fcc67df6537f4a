import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import Draft, ProposalRequest, StepFeedback
from specplug.testing import examples
from specplug.testing.toy import ToyTarget, plain, speculate
from specplug_jacobi.proposer import JacobiOptions, JacobiProposer, next_window


def test_next_window_shifts_past_the_accepted_tokens_and_the_bonus():
    assert next_window([7, 8, 9, 4, 5], 1, 4, 0) == [9, 4, 5, 0]
    assert next_window([7, 8, 9, 4, 5], 4, 4, 3) == [3, 3, 3, 3]  # all accepted: nothing to refine
    assert next_window([7, 8, 9, 4, 5], 0, 2, 0) == [8, 9]


def test_the_window_is_the_previous_iterate_of_the_target():
    p = JacobiProposer(JacobiOptions(window=3))
    p.start_request("a", np.array([1, 2]))
    d = p.propose(ProposalRequest("a", np.array([1, 2]), 2, 8))
    assert d.token_ids.tolist() == [2, 2, 2]  # repeat_last fill
    # target: after root 5 (bonus, guess 0 rejected), after guesses: 6, 7, 8
    p.observe(StepFeedback("a", d, [], [5], target_predictions=np.array([5, 6, 7, 8])))
    d2 = p.propose(ProposalRequest("a", np.array([1, 2, 5]), 2, 8))
    assert d2.token_ids.tolist() == [6, 7, 8]  # the predictions after the rejected guess
    # a history that did not grow as observed resets to fills
    d3 = p.propose(ProposalRequest("a", np.array([1, 2, 5, 9]), 2, 8))
    assert d3.token_ids.tolist() == [9, 9, 9]
    p.finish_request("a")
    assert not p._states


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.integers(0, 11), min_size=1, max_size=8), st.integers(1, 8), st.integers(1, 40),
    st.sampled_from(["repeat_last", "pad"]), st.integers(0, 5), st.integers(1, 3),
)
def test_greedy_identical_to_plain_on_random_histories(prompt, k, n, init, seed, order):
    target = ToyTarget(vocab=12, seed=seed, order=order)
    proposer = JacobiProposer(JacobiOptions(window=k, init=init))
    out, steps, drafts = speculate(proposer, target, prompt, n, k)
    assert out == plain(target, prompt, n)
    assert steps <= n
    assert all(not d.is_tree for d in drafts)


class CopyTarget(ToyTarget):
    """A target whose greedy token repeats the previous one: the fill is already its fixed point."""

    def topk(self, ctx, k):
        return [ctx[-1]] + [t for t in range(self.vocab) if t != ctx[-1]][: k - 1]


def test_a_window_at_the_fixed_point_is_accepted_whole():
    target = CopyTarget(vocab=6)
    out, steps, _ = speculate(JacobiProposer(JacobiOptions(window=5)), target, [3], 30, 5)
    assert out == plain(target, [3], 30) == [3] * 30
    assert steps == 5  # 6 tokens per step: 5 accepted guesses + the bonus
    _, pad_steps, _ = speculate(JacobiProposer(JacobiOptions(window=5, init="pad", pad_token_id=0)), target, [3], 30, 5)
    assert pad_steps == 30  # pad guesses are never the fixed point here: one token per step
