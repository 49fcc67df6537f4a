"""Block verification (Sun, Mendlovic, Leviathan et al., ICLR 2025, arXiv 2403.10444). Lossless.

Token-wise speculative sampling accepts draft token ``X_i`` with probability ``min(1, p(X_i)/q(X_i))``
and stops at the first rejection. Block verification decides on the drafted chain ``X_1..X_g``
*jointly*: a token the draft under-proposed (ratio above 1) pays for a later one it over-proposed.
With ``P_i``/``Q_i`` the target's/draft's distributions after ``X_1..X_i`` (``P_0`` after the root):

- running joint ratio: ``w_0 = 1``, ``w_i = min(1, w_{i-1} * P_{i-1}(X_i) / Q_{i-1}(X_i))``;
- residual mass: ``r_i = sum_x max(0, w_i P_i(x) - Q_i(x))``;
- acceptance weight: ``h_i = r_i / (r_i + 1 - w_i)`` for ``i < g`` (``1`` when both are 0), ``h_g = w_g``;
- with independent uniforms ``eta_1..eta_g``: ``tau = max{i : eta_i <= h_i}`` (0 when none); keep
  ``X_1..X_tau``; the bonus token is drawn from ``P_g`` when ``tau = g``, else from the block residual
  ``norm(max(0, w_tau P_tau - Q_tau))`` (for ``tau = 0`` the usual ``norm(max(0, P_0 - Q_0))``).

This is the paper's Algorithm 2; its Theorem 1 proves the output distributed exactly as the target's
and its Theorem 2 that no valid verifier, token-wise speculative sampling included, accepts more
tokens in expectation (both checked in ``tests/``). Unlike token-wise verification, every ``eta_i`` is
looked at: a later position can restore a block an earlier weight did not keep.

Drafts without probabilities (n-gram, greedy drafters) have ``Q_i`` one-hot at the drafted token; the
rule then reduces to ``w_i = prod P(X_j)`` and stays exact. Padding (an id outside the vocabulary, as
vLLM pads) ends the chain there. Trees are refused: the paper's rule is for one chain (use
``tree_verification`` for trees).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from specplug.protocols import Draft, SamplingParams, VerifyResult

__all__ = ["BlockVerifier", "acceptance_weights", "block_residual", "tokenwise_expected_accepted",
           "block_expected_accepted"]

_EPS = 1e-12


def _q_rows(q: np.ndarray | None, tokens: list[int], vocab: int) -> np.ndarray:
    """``[g, V]`` draft distributions; one-hot at the drafted token for deterministic drafts, and
    for a row that gives its own drafted token probability 0 (inconsistent: treated as deterministic)."""
    rows = np.zeros((len(tokens), vocab)) if q is None else np.array(q[: len(tokens)], dtype=np.float64)
    for i, x in enumerate(tokens):
        if q is None or rows[i, x] <= 0.0:
            rows[i] = 0.0
            rows[i, x] = 1.0
    return rows


def acceptance_weights(p: np.ndarray, q: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(w, h)``: the running joint ratios ``w_0..w_g`` and acceptance weights ``h_1..h_g``.

    ``p``: ``[g + 1, V]`` target distributions (root, then after each draft token); ``q``: ``[g, V]``
    draft distributions; ``tokens``: the ``g`` drafted ids. ``h[i - 1]`` is ``h_i`` of the module docstring.
    """
    g = len(tokens)
    w = np.ones(g + 1)
    for i, x in enumerate(tokens, start=1):
        w[i] = min(1.0, w[i - 1] * p[i - 1, x] / q[i - 1, x])
    h = np.empty(g)
    for i in range(1, g):
        r = float(np.maximum(w[i] * p[i] - q[i], 0.0).sum())
        denom = r + 1.0 - w[i]
        h[i - 1] = r / denom if denom > _EPS else 1.0
    if g:
        h[g - 1] = w[g]
    return w, h


def block_residual(p_row: np.ndarray, q_row: np.ndarray, weight: float) -> np.ndarray:
    """``norm(max(0, weight * p_row - q_row))``; ``p_row`` when that mass is 0 (never sampled then)."""
    r = np.maximum(weight * p_row - q_row, 0.0)
    total = float(r.sum())
    return r / total if total > _EPS else p_row


def _draw(dist: np.ndarray, u: float) -> int:
    """The token whose CDF interval holds ``u``; never a zero-probability token."""
    cdf = np.cumsum(dist)
    idx = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), dist.size - 1)
    while dist[idx] <= 0.0:
        idx -= 1
    return idx


def _chain_length(draft: Draft, vocab: int) -> int:
    """How many leading nodes of a chain draft are real drafts (padding ends the chain)."""
    parents = draft.parent_array()
    if len(draft) and not np.array_equal(parents, np.arange(-1, len(draft) - 1)):
        raise ValueError(
            "block_verification verifies a chain (each node the child of the one before); this draft is a "
            "tree: use a chain drafter, or the tree_verification verifier for trees"
        )
    ok = draft.in_vocab(vocab)
    return int(np.argmin(ok)) if not ok.all() else len(draft)


class BlockVerifier:
    """Block verification of a chain (see the module docstring).

    Randomness: one ``torch.rand`` call per verify from ``generator`` (``g`` uniforms for the
    acceptance weights, one for the bonus token), so results are reproducible for a seeded generator.
    The arithmetic runs in float64 numpy.
    """

    lossless: ClassVar[bool] = True
    #: verifies chains only: a tree draft is refused with a ValueError naming the tree
    chains_only: ClassVar[bool] = True

    def verify(self, target_logits, draft: Draft, sampling: SamplingParams, generator=None) -> VerifyResult:
        import torch

        from specplug.verify.sampling import check_shapes, draft_probs, process_logits

        check_shapes(target_logits, draft)
        p = process_logits(target_logits, sampling).double().cpu().numpy()  # [n + 1, V]
        vocab = p.shape[-1]
        g = _chain_length(draft, vocab)
        q_t = draft_probs(draft, torch.device("cpu"))
        tokens = [int(t) for t in draft.token_ids[:g]]
        q = _q_rows(None if q_t is None else q_t.double().numpy(), tokens, vocab)  # [g, V]
        device = generator.device if generator is not None else "cpu"
        u = torch.rand(g + 1, generator=generator, device=device, dtype=torch.float64).cpu().numpy()
        w, h = acceptance_weights(p, q, tokens)
        passed = np.nonzero(u[:g] <= h)[0]
        tau = int(passed[-1]) + 1 if passed.size else 0
        if tau == g:
            bonus = _draw(p[g], float(u[g]))
        else:
            bonus = _draw(block_residual(p[tau], q[tau], float(w[tau])), float(u[g]))
        return VerifyResult(list(range(tau)), tokens[:tau] + [bonus])


# -- exact expectations (the paper's Theorem 2 is checked with these) -----------------------------


def tokenwise_expected_accepted(p: np.ndarray, q: np.ndarray, tokens: list[int]) -> float:
    """E[accepted tokens | draft] under token-wise speculative sampling: sum_i prod_{j<=i} min(1, p/q)."""
    total, run = 0.0, 1.0
    for i, x in enumerate(tokens):
        run *= min(1.0, p[i, x] / q[i, x])
        total += run
    return total


def block_expected_accepted(p: np.ndarray, q: np.ndarray, tokens: list[int]) -> float:
    """E[accepted tokens | draft] under block verification: sum_i P(tau >= i) = sum_i (1 - prod_{j>=i} (1 - h_j))."""
    _, h = acceptance_weights(p, q, tokens)
    miss = np.cumprod((1.0 - h)[::-1])[::-1]  # miss[i - 1] = prod_{j >= i} (1 - h_j)
    return float((1.0 - miss).sum())
