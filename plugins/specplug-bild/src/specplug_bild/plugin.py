"""specplug hooks of the ``bild`` plugin: the method (the small model with its fallback policy) and the
verifier of the same id (the large model's rollback policy). Run them together:
``specplug generate --method bild -o layers=0-3 --verifier bild``."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec, VerifierSpec
from specplug.protocols import Need

from specplug_bild.policies import BildOptions, BildVerifierOptions


def _proposer(options: BildOptions):
    from specplug_bild.proposer import BildProposer

    return BildProposer(options)


def _verifier(options: BildVerifierOptions):
    from specplug_bild.verifier import BildRollbackVerifier

    return BildRollbackVerifier(options)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="bild", factory=_proposer, options=BildOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="bild", factory=_verifier, options=BildVerifierOptions))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_bild.adaptive_bench import KIND

    register(KIND)
