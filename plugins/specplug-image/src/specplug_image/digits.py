"""The UCI handwritten digits as token sequences: real images for a small autoregressive image model.

scikit-learn ships the data set inside its wheel (``sklearn.datasets.load_digits``: 1,797 greyscale
images of 8x8 pixels, 17 grey levels 0..16, ten classes), so nothing is downloaded.

Tokenization (:class:`DigitsTokenizer`): one token per pixel in raster order (row by row, left to
right), the pixel's grey level as its id, after a class token that conditions the image::

    ids 0..16   grey levels (pixel tokens)
    ids 17..26  class tokens "digit 0" .. "digit 9"

    image of a 3  ->  [20, p(0,0), p(0,1), ..., p(7,7)]     (1 + 64 tokens)

Generating an image is decoding 64 new tokens after the one-token prompt ``[class token]``. There is
no end-of-sequence token: every image has exactly 64 pixels.

The split (:func:`load_split`) is fixed: 20 % of the images, stratified by class, with seed 0, are the
held-out test split that quality is measured against; the model and the classifier train on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DigitsSplit", "DigitsTokenizer", "IMAGE_SHAPE", "NUM_CLASSES", "NUM_LEVELS", "load_split"]

IMAGE_SHAPE = (8, 8)
NUM_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_LEVELS = 17  # grey levels 0..16
NUM_CLASSES = 10
TEST_FRACTION = 0.2
SPLIT_SEED = 0


class DigitsTokenizer:
    """Images and labels to token ids and back (see the module docstring for the layout)."""

    num_levels = NUM_LEVELS
    num_classes = NUM_CLASSES
    vocab_size = NUM_LEVELS + NUM_CLASSES
    image_len = NUM_PIXELS

    def class_token(self, label: int) -> int:
        if not 0 <= int(label) < NUM_CLASSES:
            raise ValueError(f"digit class must be in 0..{NUM_CLASSES - 1}, got {label}")
        return NUM_LEVELS + int(label)

    def prompt(self, label: int) -> list[int]:
        """The one-token prompt that asks for an image of ``label``."""
        return [self.class_token(label)]

    def encode(self, image: np.ndarray, label: int) -> list[int]:
        """``[class token] + 64 pixel tokens``; ``image`` is 8x8 (or 64 values) of integer grey levels 0..16."""
        pixels = np.asarray(image).reshape(-1)
        if pixels.size != NUM_PIXELS:
            raise ValueError(f"an image has {NUM_PIXELS} pixels (8x8), got {pixels.size}")
        levels = np.rint(pixels).astype(np.int64)
        if np.any(levels != pixels) or levels.min() < 0 or levels.max() >= NUM_LEVELS:
            raise ValueError(f"pixels must be integer grey levels 0..{NUM_LEVELS - 1}")
        return self.prompt(label) + levels.tolist()

    def decode(self, ids) -> tuple[np.ndarray, int | None]:
        """``(image [8, 8] int, label or None)`` from ``[class token] + pixels`` or from the 64 pixels alone.

        A generated token that is not a grey level (a class token where a pixel belongs) is an error.
        """
        ids = [int(t) for t in ids]
        label = None
        if len(ids) == NUM_PIXELS + 1:
            label = ids[0] - NUM_LEVELS
            if not 0 <= label < NUM_CLASSES:
                raise ValueError(f"first token {ids[0]} is not a class token ({NUM_LEVELS}..{self.vocab_size - 1})")
            ids = ids[1:]
        if len(ids) != NUM_PIXELS:
            raise ValueError(f"expected {NUM_PIXELS} pixel tokens (or 1 + {NUM_PIXELS}), got {len(ids)}")
        bad = [t for t in ids if not 0 <= t < NUM_LEVELS]
        if bad:
            raise ValueError(f"tokens {bad[:5]} are not grey levels 0..{NUM_LEVELS - 1}")
        return np.asarray(ids, dtype=np.int64).reshape(IMAGE_SHAPE), label


    def decode_generated(self, ids) -> tuple[np.ndarray, int]:
        """``(image [8, 8], invalid)`` for 64 generated tokens, where a token that is not a grey level
        (a class token sampled where a pixel belongs) is drawn as background 0 and counted in ``invalid``."""
        ids = np.asarray([int(t) for t in ids], dtype=np.int64)
        if ids.size != NUM_PIXELS:
            raise ValueError(f"expected {NUM_PIXELS} generated pixel tokens, got {ids.size}")
        bad = (ids < 0) | (ids >= NUM_LEVELS)
        return np.where(bad, 0, ids).reshape(IMAGE_SHAPE), int(bad.sum())


@dataclass(frozen=True)
class DigitsSplit:
    """The fixed train / test split of the digits (images as int grey levels [N, 8, 8])."""

    train_images: np.ndarray  # [N_train, 8, 8] int64
    train_labels: np.ndarray  # [N_train] int64
    test_images: np.ndarray  # [N_test, 8, 8] int64
    test_labels: np.ndarray  # [N_test] int64

    def sequences(self, which: str = "train") -> np.ndarray:
        """Token sequences [N, 65] of the ``train`` or ``test`` images."""
        images, labels = (self.train_images, self.train_labels) if which == "train" else (self.test_images, self.test_labels)
        tok = DigitsTokenizer()
        return np.asarray([tok.encode(img, lab) for img, lab in zip(images, labels)], dtype=np.int64)


def load_split() -> DigitsSplit:
    """The digits, split 80/20 stratified by class with a fixed seed (needs scikit-learn)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency of this package
        raise RuntimeError(f"the digits data set needs scikit-learn ({err}): pip install scikit-learn") from None
    data = load_digits()
    images = data.images.astype(np.int64)  # [1797, 8, 8], values 0..16
    labels = data.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return DigitsSplit(tr_x, tr_y, te_x, te_y)
