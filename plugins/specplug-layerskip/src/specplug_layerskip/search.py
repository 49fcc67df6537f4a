"""Bayesian optimisation over layer-skip masks (numpy + scipy; no torch).

A mask is a 0/1 vector over the model's ``2 L`` sub-layers (``[attention_0..attention_{L-1},
mlp_0..mlp_{L-1}]``, 1 = skipped). Draft&Verify searches this space with a Gaussian-process
Bayesian optimiser (the ``bayes_opt`` package over ``2 L`` continuous inputs thresholded at 0.5);
SWIFT does the same with a fixed number of skipped sub-layers, alternating random draws with a BO
suggestion. :class:`MaskOptimizer` is that optimiser written for binary inputs directly:

- a Gaussian process with a squared-exponential kernel on the masks (for 0/1 vectors the squared
  distance is the Hamming distance, so ``k = exp(-hamming / (2 l^2))``, positive definite), on
  standardised objective values, with a small noise term (objective values are measured);
- expected improvement over the best value so far, maximised over a candidate pool of random
  masks and one- and two-bit neighbours of the best masks (a 60-bit space cannot be enumerated);
- ``locked`` sub-layers are never skipped (both papers keep the first and the last layer), and
  ``skips`` fixes the number of skipped sub-layers (SWIFT's skip ratio) or bounds it (``min_skips``,
  ``max_skips``); ``keep_one_of`` lists sub-layers of which one must stay (the attention blocks: the
  draft's KV cache needs one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.stats import norm

__all__ = ["MaskOptimizer", "locked_sublayers"]


def locked_sublayers(num_layers: int) -> tuple[int, ...]:
    """Sub-layers never skipped: both blocks of the first and the last layer (as both papers do),
    for models of 4 layers or more; none for smaller (test) models."""
    if num_layers < 4:
        return ()
    return (0, num_layers - 1, num_layers, 2 * num_layers - 1)


class MaskOptimizer:
    def __init__(
        self,
        size: int,
        locked: Sequence[int] = (),
        skips: int | None = None,
        min_skips: int = 1,
        max_skips: int | None = None,
        seed: int = 0,
        length_scale: float | None = None,
        noise: float = 1e-2,
        keep_one_of: Sequence[int] = (),
    ) -> None:
        self.size = size
        self.keep_one_of = np.asarray(list(keep_one_of), dtype=np.int64)  # at least one of these stays unskipped
        self.free = np.array([i for i in range(size) if i not in set(locked)], dtype=np.int64)
        if self.free.size == 0:
            raise ValueError("every sub-layer is locked: nothing to search")
        if skips is not None:
            min_skips = max_skips = skips
        self.min_skips = max(0, min(min_skips, self.free.size))
        self.max_skips = self.free.size if max_skips is None else max(self.min_skips, min(max_skips, self.free.size))
        self.rng = np.random.default_rng(seed)
        self.length_scale = length_scale or max(1.0, np.sqrt(self.free.size / 8))
        self.noise = noise
        self.masks: list[np.ndarray] = []
        self.values: list[float] = []

    # -- history --------------------------------------------------------------------------------
    def register(self, mask, value: float) -> None:
        self.masks.append(np.asarray(mask, dtype=np.int8).reshape(self.size))
        self.values.append(float(value))

    def seen(self, mask) -> bool:
        mask = np.asarray(mask, dtype=np.int8)
        return any(np.array_equal(mask, m) for m in self.masks)

    @property
    def best(self) -> tuple[np.ndarray, float]:
        if not self.values:
            raise ValueError("no mask evaluated yet")
        i = int(np.argmax(self.values))
        return self.masks[i], self.values[i]

    # -- proposals ------------------------------------------------------------------------------
    def random_mask(self, count: int | None = None) -> np.ndarray:
        """A mask skipping ``count`` (default: uniform in the allowed range) random free sub-layers."""
        if count is None:
            count = int(self.rng.integers(self.min_skips, self.max_skips + 1))
        for _ in range(100):
            mask = np.zeros(self.size, dtype=np.int8)
            mask[self.rng.choice(self.free, size=count, replace=False)] = 1
            if self._valid(mask):
                return mask
        raise ValueError(f"no valid mask skips {count} sub-layers")

    def _valid(self, mask: np.ndarray) -> bool:
        locked = np.ones(self.size, dtype=bool)
        locked[self.free] = False
        n = int(mask.sum())
        if self.keep_one_of.size and mask[self.keep_one_of].all():
            return False
        return not mask[locked].any() and self.min_skips <= n <= self.max_skips

    def _neighbours(self, mask: np.ndarray, count: int) -> list[np.ndarray]:
        """Masks one or two changes from ``mask``: a flip, or (keeping the count) a swap."""
        out = []
        on, off = self.free[mask[self.free] == 1], self.free[mask[self.free] == 0]
        for _ in range(count):
            m = mask.copy()
            if on.size and off.size and (self.min_skips == self.max_skips or self.rng.random() < 0.5):
                m[self.rng.choice(on)] = 0
                m[self.rng.choice(off)] = 1
            else:
                m[self.rng.choice(self.free)] ^= 1
            if self._valid(m):
                out.append(m)
        return out

    def _posterior(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack(self.masks).astype(np.float64)
        y = np.asarray(self.values, dtype=np.float64)
        mean, std = y.mean(), y.std() or 1.0
        z = (y - mean) / std

        def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            hamming = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
            return np.exp(-0.5 * hamming / self.length_scale**2)

        gram = kernel(x, x) + self.noise * np.eye(len(x))
        factor = cho_factor(gram, lower=True)
        cross = kernel(candidates.astype(np.float64), x)  # [C, n]
        mu = cross @ cho_solve(factor, z)
        var = np.clip(1.0 - np.einsum("cn,nc->c", cross, cho_solve(factor, cross.T)), 1e-12, None)
        return mu * std + mean, np.sqrt(var) * std

    def suggest(self, pool: int = 512) -> np.ndarray:
        """The unseen mask with the largest expected improvement (random before any history)."""
        if len(self.values) < 2:
            return self.random_mask()
        order = np.argsort(self.values)[::-1]
        candidates = [self.random_mask() for _ in range(pool // 2)]
        for rank in order[:4]:
            candidates += self._neighbours(self.masks[rank], pool // 8)
        candidates = [c for c in candidates if not self.seen(c)]
        if not candidates:
            return self.random_mask()
        cand = np.stack(candidates)
        mu, sigma = self._posterior(cand)
        best = max(self.values)
        gap = mu - best
        z = gap / sigma
        improvement = gap * norm.cdf(z) + sigma * norm.pdf(z)
        return cand[int(np.argmax(improvement))]
