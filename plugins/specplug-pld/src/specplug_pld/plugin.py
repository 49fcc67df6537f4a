"""specplug hooks of the ``pld`` plugin (entry point ``pld`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_pld.proposer import PldOptions, PldProposer


@hookimpl
def specplug_register_methods(register):
    # max_k is None: a match's continuation can be as long as the history, so the number of drafted
    # tokens is bounded only by the engine's k (and the option num_pred_tokens).
    register(MethodSpec(id="pld", factory=PldProposer, options=PldOptions, max_k=None, tree=False))
