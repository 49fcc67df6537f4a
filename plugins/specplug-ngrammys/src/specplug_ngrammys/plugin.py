"""specplug hooks of the ``ngrammys`` plugin (entry point ``ngrammys`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_ngrammys.proposer import NgrammysOptions, NgrammysProposer


@hookimpl
def specplug_register_methods(register):
    # A batch of chains sharing the root (a tree); vLLM level 1 verifies the first chain. The bigram table
    # comes from bind_target's model (reference engine) or the option model (vLLM), so no Need is declared.
    register(MethodSpec(id="ngrammys", factory=NgrammysProposer, options=NgrammysOptions, max_k=None, tree=True))
