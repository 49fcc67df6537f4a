"""The level 2 verifier hook's math inside vLLM's own objects, against the exact figures.

Last session's vLLM run measured MAT 2.30 through the hook and 1.09 with vLLM's sampler for the same
drafter at temperature 1. vLLM's own rejection kernels are Triton kernels, and on this CPU build Triton
is disabled ("Triton is installed, but doesn't include CPU backend"): they cannot be called here, so
the hook is checked against the exact figures instead. It runs on one batch built by hand with vLLM's
RejectionSampler, SpecDecodeMetadata and SamplingMetadata (no engine): thousands of requests,
each a chain of 2 drafts sampled from known draft rows ``q`` with those rows as vLLM's ``draft_probs``,
and known target rows ``p``. For speculative sampling the first emitted token must follow ``p1`` and
the first draft is accepted with probability ``sum(min(p1, q1))``; the second, once the first is
accepted, with ``sum(min(p2, q2))``. The hook is checked against those exact figures, and a
control that hands the hook the draft rows one position late (a misaligned ``q``) must be rejected.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm]

VOCAB, DRAFTS, BATCH = 12, 2, 3000


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    p = torch.tensor(rng.dirichlet(np.full(VOCAB, 0.8), size=DRAFTS + 1), dtype=torch.float32)  # target rows
    q = torch.tensor(rng.dirichlet(np.full(VOCAB, 0.8), size=DRAFTS), dtype=torch.float32)  # draft rows
    return p, q


def _batch(p, q, seed: int = 1):
    """vLLM's inputs for BATCH requests: drafts sampled from q, logits laid out as the runner does."""
    from vllm.v1.sample.logits_processor import LogitsProcessors
    from vllm.v1.sample.metadata import SamplingMetadata
    from vllm.v1.spec_decode.metadata import SpecDecodeMetadata

    gen = torch.Generator().manual_seed(seed)
    drafts = torch.stack([torch.multinomial(q[j], BATCH, replacement=True, generator=gen) for j in range(DRAFTS)], 1)
    metadata = SpecDecodeMetadata.make_dummy(drafts.tolist(), torch.device("cpu"))
    starts = torch.arange(BATCH, dtype=torch.int32) * (DRAFTS + 1)
    metadata.target_logits_indices = (starts[:, None] + torch.arange(DRAFTS, dtype=torch.int32)).reshape(-1)
    metadata.bonus_logits_indices = starts + DRAFTS
    metadata.logits_indices = torch.arange(BATCH * (DRAFTS + 1), dtype=torch.int32)
    logits = torch.log(p).repeat(BATCH, 1)  # [BATCH * (DRAFTS + 1), V]
    draft_probs = q.repeat(BATCH, 1).contiguous()  # [BATCH * DRAFTS, V]
    sampling = SamplingMetadata(
        temperature=torch.ones(BATCH), all_greedy=False, all_random=True, top_p=None, top_k=None, generators={},
        max_num_logprobs=None, no_penalties=True, prompt_token_ids=None, frequency_penalties=torch.zeros(BATCH),
        presence_penalties=torch.zeros(BATCH), repetition_penalties=torch.ones(BATCH),
        output_token_ids=[[] for _ in range(BATCH)], allowed_token_ids_mask=None, bad_words_token_ids={},
        logitsprocs=LogitsProcessors())
    return drafts, metadata, logits, draft_probs, sampling


def _sampler():
    from vllm.v1.sample.rejection_sampler import RejectionSampler
    from vllm.v1.sample.sampler import Sampler

    return RejectionSampler(Sampler())


def _figures(out: torch.Tensor, drafts: torch.Tensor):
    """First-token counts, and acceptance of draft 1 and of draft 2 after draft 1."""
    out = out.cpu()
    first = np.bincount(out[:, 0].numpy(), minlength=VOCAB)
    acc1 = out[:, 0] == drafts[:, 0]
    acc2 = (out[:, 1] == drafts[:, 1]) & acc1
    return first, float(acc1.float().mean()), float(acc2.sum() / max(int(acc1.sum()), 1))


def _check(first, acc1, acc2, p, q):
    exact1 = float(torch.minimum(p[0], q[0]).sum())
    exact2 = float(torch.minimum(p[1], q[1]).sum())
    n2 = BATCH * exact1
    assert abs(acc1 - exact1) < 5 * np.sqrt(exact1 * (1 - exact1) / BATCH), (acc1, exact1)
    assert abs(acc2 - exact2) < 5 * np.sqrt(exact2 * (1 - exact2) / n2), (acc2, exact2)
    expected = p[0].double().numpy()
    return float(chisquare(first, expected / expected.sum() * first.sum()).pvalue)


def test_the_hook_verifies_vllms_batch_exactly():
    from specplug.integrations.vllm.patches import _verify_with
    from specplug.registry import get_registry

    p, q = _problem()
    sampler = _sampler()
    drafts, metadata, logits, draft_probs, sampling = _batch(p, q)
    for verifier in ("speculative_sampling", "block_verification"):
        hook = _verify_with(sampler, get_registry().verifier(verifier).build({}), metadata, logits.clone(), sampling,
                            draft_probs).sampled_token_ids
        first, acc1, acc2 = _figures(hook, drafts)
        if verifier == "speculative_sampling":
            assert _check(first, acc1, acc2, p, q) > 1e-3
        else:  # block verification: the first emitted token still follows p1 (it is exact), and it accepts as many
            expected = p[0].double().numpy()
            assert float(chisquare(first, expected / expected.sum() * first.sum()).pvalue) > 1e-3


def test_a_misaligned_q_in_the_hook_is_caught():
    """The control: the hook given each request's draft rows one position late (q2 at position 1)."""
    from specplug.integrations.vllm.patches import _verify_with
    from specplug.registry import get_registry

    p, q = _problem()
    drafts, metadata, logits, draft_probs, sampling = _batch(p, q)
    late = q[[1, 0]].repeat(BATCH, 1).contiguous()
    hook = _verify_with(_sampler(), get_registry().verifier("speculative_sampling").build({}), metadata, logits.clone(),
                        sampling, late).sampled_token_ids
    first, acc1, acc2 = _figures(hook, drafts)
    expected = p[0].double().numpy()
    assert float(chisquare(first, expected / expected.sum() * first.sum()).pvalue) < 1e-6
