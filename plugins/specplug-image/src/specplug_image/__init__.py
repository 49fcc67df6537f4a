"""Speculative decoding for autoregressive image generation, as a specplug plugin.

- :mod:`specplug_image.digits`: the UCI digits (scikit-learn's copy) as pixel-token sequences.
- :mod:`specplug_image.train`: ``specplug models train-digits``: the target and drafter Llamas.
- :mod:`specplug_image.lantern`: the ``lantern`` verifier (relaxed acceptance, lossy).
- :mod:`specplug_image.sjd`: the ``sjd`` method (Speculative Jacobi Decoding).
- :mod:`specplug_image.drafter`: a small-model drafter (sampled drafts with probabilities).
- :mod:`specplug_image.quality`: a classifier of the real digits: class accuracy, Fréchet distance.
- :mod:`specplug_image.generate`: class-conditional sampling in the reference engine.
- :mod:`specplug_image.cli`: ``specplug models train-digits`` and ``specplug image sample``.
- :mod:`specplug_image.plugin`: the hook implementations.
"""

__version__ = "0.1.0"
