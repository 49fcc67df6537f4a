"""specplug hooks of specplug-ouroboros: the ``ouroboros`` method (entry point ``ouroboros`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_ouroboros.proposer import OuroborosOptions, OuroborosProposer


@hookimpl
def specplug_register_methods(register):
    # a draft model (target_model for a 'layers' draft) and the target's predictions at the draft
    # positions (phrases from verification): level 2 gives no model, so ouroboros runs in the reference engine.
    register(MethodSpec(id="ouroboros", factory=OuroborosProposer, options=OuroborosOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model, Need.target_predictions})))
