"""Big Little Decoder (BiLD, arXiv 2302.07863) for specplug: the ``bild`` method and the ``bild`` verifier."""
