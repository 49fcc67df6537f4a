"""Speculative Jacobi Decoding (Teng et al., ICLR 2025) as a specplug method plugin.

- :mod:`specplug_sjd.proposer`: the kernel :func:`next_iterate`, :class:`SJDProposer`, :class:`SJDOptions`.
- :mod:`specplug_sjd.plugin`: the ``sjd`` method's registration.
"""

__version__ = "0.1.0"
