"""FLy's two tiers: a mismatch is kept only where the target is uncertain (entropy gate) and goes
on agreeing with the draft (deferred window); each tier alone rejects; a gate above any entropy is
greedy match (lossless); sampling and trees are refused with clear errors."""

import numpy as np
import pytest
import torch

from specplug.protocols import Draft, SamplingParams
from specplug.testing import NoisyOracleProposer, assert_greedy_lossless, greedy_reference, tiny_llama
from specplug_fly.options import FlyOptions
from specplug_fly.verifier import FlyVerifier, loose_accept_length


def test_a_mismatch_is_kept_only_when_both_tiers_agree():
    argmax = [5, 6, 7, 8, 9]
    tokens = [5, 1, 7, 8]  # mismatch at position 1, then the target agrees twice
    high = np.full(5, 2.0)
    low = np.full(5, 0.1)
    assert loose_accept_length(argmax, high, tokens, threshold=1.0, window=2) == 4
    assert loose_accept_length(argmax, low, tokens, threshold=1.0, window=2) == 1  # gate closed: exact match
    assert loose_accept_length(argmax, high, [5, 1, 7, 3], threshold=1.0, window=2) == 1  # the target corrects the draft
    assert loose_accept_length(argmax, high, [5, 1, 7], threshold=1.0, window=2) == 1  # window not drafted yet


def test_verify_reads_entropy_and_argmax_from_the_target_rows():
    flat = torch.zeros(5, 8)  # entropy log(8) ~ 2.08 nats, argmax 0
    flat[:, 0] = 0.01
    out = FlyVerifier(FlyOptions(entropy_threshold=1.0, window=2)).verify(flat, Draft.chain([3, 0, 0, 0]), SamplingParams())
    assert out.accepted_nodes == [0, 1, 2, 3] and out.tokens == [3, 0, 0, 0, 0]
    strict = FlyVerifier(FlyOptions(entropy_threshold=5.0)).verify(flat, Draft.chain([3, 0, 0, 0]), SamplingParams())
    assert strict.accepted_nodes == [] and strict.tokens == [0]


def test_a_gate_above_any_entropy_is_greedy_lossless():
    model = tiny_llama(vocab_size=64, seed=1)
    prompts = [[1, 2, 3, 4, 5]]
    refs = greedy_reference(model, prompts, max_new_tokens=16)
    from specplug.engine import ReferenceEngine

    engine = ReferenceEngine(model)
    plain = engine.generate(prompts, max_new_tokens=16)[0].token_ids
    out = engine.generate(prompts, NoisyOracleProposer(refs, vocab_size=64, corrupt=0.3, seed=2),
                          FlyVerifier(FlyOptions(entropy_threshold=100.0)), k=4, max_new_tokens=16)[0].token_ids
    assert out == plain


def test_sampling_and_trees_are_refused():
    with pytest.raises(ValueError, match="greedy"):
        FlyVerifier().verify(torch.zeros(2, 5), Draft.chain([1]), SamplingParams(temperature=1.0))
    with pytest.raises(ValueError, match="chain"):
        FlyVerifier().verify(torch.zeros(3, 5), Draft([1, 2], parents=[-1, -1]), SamplingParams())
