"""specplug hooks of specplug-lookahead: the ``lookahead`` method (its pool-driven proposer) and the
``retrieval_jacobi`` suite kind (:mod:`specplug_lookahead.bench`).

The one-forward decoder is not a proposer; it is run with
:class:`specplug_lookahead.decoder.LookaheadDecoder` (see the README).
"""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug_lookahead.proposer import LookaheadOptions, LookaheadPoolProposer


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="lookahead", factory=LookaheadPoolProposer, options=LookaheadOptions, tree=True))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_lookahead.bench import KIND

    register(KIND)
