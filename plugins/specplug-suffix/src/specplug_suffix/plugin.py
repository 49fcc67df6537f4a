"""specplug hooks of the ``suffix`` plugin (entry point ``suffix`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_suffix.proposer import SuffixOptions, SuffixProposer


@hookimpl
def specplug_register_methods(register):
    # Tree drafts; engines without tree attention (vLLM level 1) take the first chain, which the
    # proposer orders to be the most probable one. Request lifecycle is used when the engine gives
    # it and not required (vLLM level 1 gives per-row synthetic ids), so no Need is declared.
    register(MethodSpec(id="suffix", factory=SuffixProposer, options=SuffixOptions, max_k=None, tree=True))
