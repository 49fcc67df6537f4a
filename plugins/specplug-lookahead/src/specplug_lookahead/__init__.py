"""Lookahead decoding (Fu et al., arXiv 2402.02057) as a specplug method plugin.

- :mod:`specplug_lookahead.pool`: the n-gram pool (engine-free).
- :mod:`specplug_lookahead.layout`: one step's inputs, positions and attention mask (engine-free, numpy).
- :mod:`specplug_lookahead.decoder`: :class:`LookaheadDecoder`, the one-forward decoding loop on
  specplug's reference engine (torch).
- :mod:`specplug_lookahead.proposer`: :class:`LookaheadPoolProposer`, the pool-driven variant any
  engine (vLLM included) can host, and :class:`LookaheadOptions`.
- :mod:`specplug_lookahead.plugin`: the ``lookahead`` method's registration.
"""

__version__ = "0.1.0"
