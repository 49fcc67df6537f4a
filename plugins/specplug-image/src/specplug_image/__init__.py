"""Autoregressive image generation with specplug: a digits image model trained here, and its benchmark kit.

The methods themselves are their own plugins: ``specplug-lantern`` (the ``lantern`` verifier) and
``specplug-sjd`` (the ``sjd`` method). This package brings what they are measured with:

- :mod:`specplug_image.digits`: the UCI digits (scikit-learn's copy) as pixel-token sequences.
- :mod:`specplug_image.train`: ``specplug models train-digits``: the target and drafter Llamas.
- :mod:`specplug_image.drafter`: a small-model drafter (sampled drafts with probabilities).
- :mod:`specplug_image.quality`: a classifier of the real digits: class accuracy, Fréchet distance.
- :mod:`specplug_image.generate`: class-conditional sampling in the reference engine.
- :mod:`specplug_image.plots`: PNG grids of generated digits.
- :mod:`specplug_image.cli`: ``specplug models train-digits`` and ``specplug image sample``.
- :mod:`specplug_image.plugin`: the command hook.
"""

__version__ = "0.1.0"
