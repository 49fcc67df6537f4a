"""specplug hooks of the ``anpd`` plugin (entry point ``anpd`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_anpd.proposer import AnpdOptions, AnpdProposer


@hookimpl
def specplug_register_methods(register):
    # The table drafts autoregressively, one lookup per token, so any k works (max_k=None).
    register(MethodSpec(id="anpd", factory=AnpdProposer, options=AnpdOptions, max_k=None, tree=False))
