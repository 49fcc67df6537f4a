"""Jacobi decoding (Santilli et al., 2023) as a specplug method plugin.

- :mod:`specplug_jacobi.proposer`: the kernel :func:`next_window`, :class:`JacobiProposer`, :class:`JacobiOptions`.
- :mod:`specplug_jacobi.plugin`: the ``jacobi`` method's registration.
"""

__version__ = "0.1.0"
