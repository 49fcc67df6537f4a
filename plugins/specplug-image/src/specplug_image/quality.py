"""Image quality of generated digits, judged by a classifier trained on the real ones.

:class:`DigitsJudge` fits scikit-learn's ``MLPClassifier`` (one hidden layer of 64 ReLU units) on
the real training split (pixels scaled to [0, 1]) and scores a set of images two ways:

- **class accuracy**: the share of class-conditional samples the judge assigns to the class they
  were asked for (real test images score about 0.97);
- **Fréchet distance** on the judge's hidden features, FID-style (Heusel et al. 2017, with the judge's
  64 hidden units in place of Inception's pool features): ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``
  between the features of the generated images and of the real held-out test images. 0 means the same
  feature statistics; real training images against the test split give the floor a finite sample reaches.

Plain sampling from the target gives the reference quality; a lossy method's cost is its distance
above plain sampling's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specplug_image.digits import NUM_LEVELS, DigitsSplit, load_split

__all__ = ["DigitsJudge", "Quality", "frechet_distance"]


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` [N, d] and ``b`` [M, d]."""
    from scipy import linalg

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two feature sets [N >= 2, d] of the same width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(root).all():  # near-singular product: regularize as pytorch-fid does
        eps = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@dataclass(frozen=True)
class Quality:
    """Scores of one set of generated images."""

    accuracy: float  # share classified as the class asked for
    frechet: float  # Fréchet distance to the real test images, on the judge's features
    images: int


class DigitsJudge:
    """A classifier of the real digits that scores generated ones (see the module docstring)."""

    def __init__(self, split: DigitsSplit | None = None, seed: int = 0):
        from sklearn.neural_network import MLPClassifier

        self.split = split or load_split()
        self.classifier = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=600, random_state=seed)
        self.classifier.fit(self._scale(self.split.train_images), self.split.train_labels)
        self._test_features = self.features(self.split.test_images)

    @staticmethod
    def _scale(images: np.ndarray) -> np.ndarray:
        return np.asarray(images, dtype=np.float64).reshape(len(images), -1) / (NUM_LEVELS - 1)  # [N, 64]

    def features(self, images: np.ndarray) -> np.ndarray:
        """The judge's hidden ReLU activations [N, 64] for images [N, 8, 8]."""
        x = self._scale(images)
        return np.maximum(x @ self.classifier.coefs_[0] + self.classifier.intercepts_[0], 0.0)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.classifier.predict(self._scale(images))

    def score(self, images: np.ndarray, labels: np.ndarray) -> Quality:
        """Class accuracy against ``labels`` and Fréchet distance to the real test split."""
        images = np.asarray(images)
        accuracy = float((self.predict(images) == np.asarray(labels)).mean())
        return Quality(accuracy, frechet_distance(self.features(images), self._test_features), len(images))

    def real_reference(self) -> Quality:
        """The judge on real images: test-split accuracy, and training images' distance to the test split."""
        accuracy = float((self.predict(self.split.test_images) == self.split.test_labels).mean())
        frechet = frechet_distance(self.features(self.split.train_images), self._test_features)
        return Quality(accuracy, frechet, len(self.split.test_images))
