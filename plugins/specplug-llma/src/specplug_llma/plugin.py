"""specplug hooks of the ``llma`` plugin (entry point ``llma`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_llma.proposer import LlmaOptions, LlmaProposer


@hookimpl
def specplug_register_methods(register):
    # The copied span is bounded only by the reference and the engine's k (max_k None).
    register(MethodSpec(id="llma", factory=LlmaProposer, options=LlmaOptions, max_k=None, tree=False))
