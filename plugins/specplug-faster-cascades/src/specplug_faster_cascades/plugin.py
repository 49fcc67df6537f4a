"""specplug hooks of the ``faster_cascades`` plugin: the small model (method) and the speculative cascade's
verification with its deferral rule (verifier of the same id). Run them together:
``specplug generate --method faster_cascades -o layers=0-3 --verifier faster_cascades``."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec, VerifierSpec
from specplug.protocols import Need

from specplug_faster_cascades.rules import CascadeDrafterOptions, DeferralOptions


def _proposer(options: CascadeDrafterOptions):
    from specplug_faster_cascades.proposer import CascadeDrafter

    return CascadeDrafter(options)


def _verifier(options: DeferralOptions):
    from specplug_faster_cascades.verifier import SpeculativeCascadeVerifier

    return SpeculativeCascadeVerifier(options)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="faster_cascades", factory=_proposer, options=CascadeDrafterOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="faster_cascades", factory=_verifier, options=DeferralOptions))
