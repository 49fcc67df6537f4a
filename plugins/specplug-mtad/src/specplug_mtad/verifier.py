"""MTAD's verification (Qin, Hu, He, Prakriya, Cong, Sun; ICLR 2025, arXiv 2407.09722). Lossy.

MTAD aims at multi-token *joint* decoding: it treats a drafted chain ``x_1..x_g`` as one sample of
the auxiliary model's joint distribution and accepts the longest prefix whose *joint* likelihood
ratio passes one uniform test (the paper's Figure 2):

    R_i = prod_{j <= i} p(x_j | x_<j) / q(x_j | x_<j),   tau = max{i : eta <= min(1, R_i)}  (0 if none)

with one ``eta ~ U(0, 1)`` for the whole chain, and then draws the next token from the target's own
distribution after ``x_1..x_tau`` (no residual). A token the draft under-proposed lifts the ratio of
every longer prefix, so blocks pass that token-wise speculative sampling would cut; the output is no
longer distributed as the target's (the paper bounds the error against exact joint decoding;
``tests/`` show the bias with a chi-square check, and ``docs/results/verification.md`` measures the
quality given up). Greedy (temperature 0): ``R_i`` is 1 while the draft matches the argmax and 0
after, so MTAD is greedy match and lossless.

Drafts without probabilities have ``q`` one-hot. Padding ends the chain; trees are refused.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from specplug.protocols import Draft, SamplingParams, VerifyResult

__all__ = ["MtadVerifier", "joint_ratios"]


def joint_ratios(p: np.ndarray, q: np.ndarray | None, tokens: list[int]) -> np.ndarray:
    """``R_1..R_g``: the drafted prefixes' joint likelihood ratios (``q=None``: deterministic drafts)."""
    out, r = np.empty(len(tokens)), 1.0
    for i, x in enumerate(tokens):
        qx = 1.0 if q is None or q[i, x] <= 0 else float(q[i, x])
        r *= float(p[i, x]) / qx
        out[i] = r
    return out


def _chain_length(draft: Draft, vocab: int) -> int:
    parents = draft.parent_array()
    if len(draft) and not np.array_equal(parents, np.arange(-1, len(draft) - 1)):
        raise ValueError("mtad verifies a chain (MTAD's joint test is over one drafted sequence); this draft is a tree: "
                         "use a chain drafter such as sps")
    ok = draft.in_vocab(vocab)
    return int(np.argmin(ok)) if not ok.all() else len(draft)


class MtadVerifier:
    """MTAD's joint-likelihood test of a chain (see the module docstring)."""

    lossless: ClassVar[bool] = False
    #: verifies chains only: a tree draft is refused with a ValueError naming the tree
    chains_only: ClassVar[bool] = True

    def verify(self, target_logits, draft: Draft, sampling: SamplingParams, generator=None) -> VerifyResult:
        import torch

        from specplug.verify.sampling import check_shapes, draft_probs, process_logits

        check_shapes(target_logits, draft)
        p = process_logits(target_logits, sampling).double().cpu().numpy()
        g = _chain_length(draft, p.shape[-1])
        tokens = [int(t) for t in draft.token_ids[:g]]
        q_t = draft_probs(draft, torch.device("cpu"))
        q = None if q_t is None else q_t.double().numpy()
        device = generator.device if generator is not None else "cpu"
        u = torch.rand(2, generator=generator, device=device, dtype=torch.float64).cpu().numpy()
        ratios = joint_ratios(p, q, tokens)
        passed = np.nonzero(u[0] <= np.minimum(1.0, ratios))[0]
        tau = int(passed[-1]) + 1 if passed.size else 0
        row = p[tau]
        cdf = np.cumsum(row)
        bonus = min(int(np.searchsorted(cdf, u[1] * cdf[-1], side="right")), row.size - 1)
        while row[bonus] <= 0.0:
            bonus -= 1
        return VerifyResult(list(range(tau)), tokens[:tau] + [bonus])
