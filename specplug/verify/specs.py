"""The built-in verifiers as specs: ids, options and factories, torch-free.

The factories import the verifier classes when a verifier is built, so listing the registry (and
importing this module) does not import torch. :mod:`specplug.builtin.verifiers` registers these
through the same hook as any plugin's; engines build them directly by id, without the catalogue.
"""

from __future__ import annotations

from specplug.methods import MethodOptions, VerifierSpec
from specplug.verify.options import TypicalAcceptanceOptions

__all__ = ["BUILTIN_VERIFIERS", "TypicalAcceptanceOptions"]


def _greedy(options: MethodOptions):
    from specplug.verify.greedy import GreedyMatchVerifier

    return GreedyMatchVerifier()


def _speculative(options: MethodOptions):
    from specplug.verify.speculative import SpeculativeSamplingVerifier

    return SpeculativeSamplingVerifier()


def _typical(options: TypicalAcceptanceOptions):
    from specplug.verify.typical import TypicalAcceptanceVerifier

    return TypicalAcceptanceVerifier(options)


def _tree(options: MethodOptions):
    from specplug.verify.tree import TreeVerifier

    return TreeVerifier()


#: The built-in verifiers by id.
BUILTIN_VERIFIERS: dict[str, VerifierSpec] = {
    spec.id: spec
    for spec in (
        VerifierSpec(id="greedy_match", factory=_greedy),
        VerifierSpec(id="speculative_sampling", factory=_speculative),
        VerifierSpec(id="typical_acceptance", factory=_typical, options=TypicalAcceptanceOptions),
        VerifierSpec(id="tree_verification", factory=_tree),
    )
}
