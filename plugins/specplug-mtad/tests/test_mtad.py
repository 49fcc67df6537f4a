"""MTAD's joint test: greedy is greedy match (lossless), a block token-wise verification would cut
is kept whole, the output at temperature 1 is *not* the target's (lossy, shown by chi-square), and
clear errors."""

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.protocols import Draft, SamplingParams
from specplug.testing import NoisyOracleProposer, assert_greedy_lossless, greedy_reference, tiny_llama, total_accepted
from specplug_mtad.verifier import MtadVerifier, joint_ratios


def test_joint_ratio_keeps_a_block_tokenwise_would_cut():
    """p = (2/3, 1/3), q = (1/3, 2/3): 'B' alone has ratio 1/2, 'BA' has ratio (1/2) * 2 = 1."""
    p = np.array([[2 / 3, 1 / 3]] * 3)
    q = np.array([[1 / 3, 2 / 3]] * 2)
    assert joint_ratios(p, q, [1, 0]).tolist() == pytest.approx([0.5, 1.0])
    logits = torch.log(torch.tensor(p, dtype=torch.float32))
    kept = [len(MtadVerifier().verify(logits, Draft.chain([1, 0], probs=q), SamplingParams(temperature=1.0),
                                      torch.Generator().manual_seed(s)).accepted_nodes) for s in range(200)]
    assert all(k == 2 for k in kept)  # eta <= min(1, R_2) = 1 always


def test_greedy_output_equals_plain_decoding():
    model = tiny_llama(vocab_size=64, seed=1)
    prompts = [[1, 2, 3, 4, 5]]
    refs = greedy_reference(model, prompts, max_new_tokens=16)
    results = assert_greedy_lossless(lambda: NoisyOracleProposer(refs, vocab_size=64, corrupt=0.3, seed=2), model,
                                     prompts, k=4, max_new_tokens=16, verifiers=("mtad",))
    assert total_accepted(results) > 5


def test_sampling_is_lossy():
    """Two-token output over a sampled chain: MTAD's bonus comes from p without a residual, so the
    first token is biased towards what the draft over-proposes; chi-square rejects the target's law."""
    rng = np.random.default_rng(0)
    p = np.array([0.1, 0.5, 0.4])
    q = np.array([0.7, 0.2, 0.1])
    logits = torch.log(torch.tensor(np.stack([p, p, p]), dtype=torch.float32))
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(3)
    for _ in range(3000):
        x = [int(rng.choice(3, p=q)) for _ in range(2)]
        counts[MtadVerifier().verify(logits, Draft.chain(x, probs=np.stack([q, q])), SamplingParams(temperature=1.0), gen).tokens[0]] += 1
    assert chisquare(counts, p * counts.sum()).pvalue < 1e-6


def test_a_tree_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="chain"):
        MtadVerifier().verify(torch.zeros(3, 5), Draft([1, 2], parents=[-1, -1]), SamplingParams(), None)
