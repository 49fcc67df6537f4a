"""EESD's Thompson-sampling control of the draft length (Beta-TS), engine-free (numpy only).

EESD treats each draft token's acceptance as a Bernoulli trial whose rate ``theta`` has a Beta
posterior, updated from every verification: ``a`` accepted tokens of a draft count ``a`` successes,
and the first rejected token (if any) one failure. Each step it *samples* ``theta`` from the posterior
(Thompson sampling: exploration comes from the posterior's spread, and vanishes as evidence builds up)
and drafts the length that is best for the sampled rate. "Best" is the expected number of tokens per
unit of cost (Leviathan et al.'s model for i.i.d. acceptance):

    E[tokens | theta, L] = (1 - theta^(L+1)) / (1 - theta),    cost(L) = 1 + c * L,

with ``c`` the cost of one draft token relative to one target forward (for an early exit at layer N of
L_target layers, about N / L_target). Under an acceptance process with a fixed rate the posterior
concentrates on it, so the controller settles on the best fixed length.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ThompsonLengthController", "best_length", "tokens_per_cost"]


def tokens_per_cost(theta: float, length: int, cost_ratio: float) -> float:
    """Expected tokens emitted per unit of cost with draft length ``length`` (0: plain decoding)."""
    theta = min(max(float(theta), 0.0), 1.0 - 1e-12)
    expected = (1.0 - theta ** (length + 1)) / (1.0 - theta)
    return expected / (1.0 + cost_ratio * length)


def best_length(theta: float, max_length: int, cost_ratio: float, min_length: int = 1) -> int:
    """The length in ``[min_length, max_length]`` with the most expected tokens per cost (ties: shorter)."""
    return max(range(min_length, max_length + 1), key=lambda n: (tokens_per_cost(theta, n, cost_ratio), -n))


class ThompsonLengthController:
    """Beta-Bernoulli Thompson sampling over the per-token acceptance rate; chooses the draft length."""

    def __init__(self, max_length: int, cost_ratio: float, prior: tuple[float, float] = (1.0, 1.0),
                 min_length: int = 1, seed: int = 0) -> None:
        if max_length < min_length or min_length < 0:
            raise ValueError(f"need 0 <= min_length <= max_length, got {min_length}, {max_length}")
        if cost_ratio < 0:
            raise ValueError(f"cost_ratio must be >= 0, got {cost_ratio}")
        if prior[0] <= 0 or prior[1] <= 0:
            raise ValueError(f"the Beta prior's parameters must be > 0, got {prior}")
        self.max_length, self.min_length, self.cost_ratio = max_length, min_length, cost_ratio
        self.alpha, self.beta = float(prior[0]), float(prior[1])
        self.rng = np.random.default_rng(seed)

    def choose(self, limit: int | None = None) -> int:
        """This step's draft length (at most ``limit``)."""
        theta = float(self.rng.beta(self.alpha, self.beta))
        top = self.max_length if limit is None else max(min(self.max_length, limit), self.min_length)
        return best_length(theta, top, self.cost_ratio, self.min_length)

    def update(self, drafted: int, accepted: int) -> None:
        """One verification: ``accepted`` of ``drafted`` tokens kept (a rejection ended it when fewer)."""
        if drafted <= 0:
            return
        self.alpha += accepted
        self.beta += 1.0 if accepted < drafted else 0.0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)
