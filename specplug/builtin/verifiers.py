"""Built-in verifiers: registered through the same hook as any plugin's.

Their cards (``registry/methods/<id>.yaml``) come from the catalogue. The verifier classes are
imported lazily by the factories, so building the registry does not import torch.
"""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from pydantic import Field

from specplug.methods import MethodOptions, VerifierSpec


class TypicalAcceptanceOptions(MethodOptions):
    """Medusa's thresholds (defined here, torch-free, so the registry can validate options cheaply)."""

    posterior_threshold: float = Field(0.09, gt=0, le=1, description="epsilon: the hard acceptance threshold")
    posterior_alpha: float = Field(0.3, gt=0, le=1, description="delta: scale of the entropy-adaptive threshold")


def _greedy(options: MethodOptions):
    from specplug.verify import GreedyMatchVerifier

    return GreedyMatchVerifier()


def _speculative(options: MethodOptions):
    from specplug.verify import SpeculativeSamplingVerifier

    return SpeculativeSamplingVerifier()


def _typical(options):
    from specplug.verify import TypicalAcceptanceVerifier

    return TypicalAcceptanceVerifier(options)


def _tree(options: MethodOptions):
    from specplug.verify import TreeVerifier

    return TreeVerifier()


#: The built-in verifiers by id (engines build these directly, without the catalogue).
BUILTIN_VERIFIERS: dict[str, VerifierSpec] = {
    spec.id: spec
    for spec in (
        VerifierSpec(id="greedy_match", factory=_greedy),
        VerifierSpec(id="speculative_sampling", factory=_speculative),
        VerifierSpec(id="typical_acceptance", factory=_typical, options=TypicalAcceptanceOptions),
        VerifierSpec(id="tree_verification", factory=_tree),
    )
}


@hookimpl
def specplug_register_verifiers(register):
    for spec in BUILTIN_VERIFIERS.values():
        register(spec)
