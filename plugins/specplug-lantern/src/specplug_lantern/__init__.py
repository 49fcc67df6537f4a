"""LANTERN (Jang et al., ICLR 2025): relaxed speculative acceptance with latent proximity, as a specplug verifier.

- :mod:`specplug_lantern.verifier`: :func:`latent_neighbours`, :func:`relaxed_target`, :class:`LanternVerifier`, :class:`LanternOptions`.
- :mod:`specplug_lantern.plugin`: the ``lantern`` verifier's registration.
"""

__version__ = "0.1.0"
