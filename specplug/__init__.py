"""specplug: the survey of speculative decoding as software.

Public API, re-exported here:

- :data:`hookimpl`: decorator for plugin hook implementations.
- :class:`MethodCard` and the facet enums (:mod:`specplug.taxonomy`).
- :class:`MethodSpec`, :class:`VerifierSpec`, :class:`MethodOptions` (:mod:`specplug.methods`).
- :class:`Draft`, :class:`Proposer`, :class:`BaseProposer`, :class:`ProposalRequest`,
  :class:`Verifier`, :class:`VerifyResult` (:mod:`specplug.protocols`).
- :func:`get_registry`.
"""

from specplug._version import __version__
from specplug.hookspecs import hookimpl
from specplug.methods import MethodOptions, MethodSpec, OptionsError, VerifierSpec
from specplug.protocols import (
    BaseProposer,
    Draft,
    Need,
    ProposalRequest,
    Proposer,
    SamplingParams,
    StepFeedback,
    Verifier,
    VerifyResult,
)
from specplug.registry import get_registry
from specplug.taxonomy import MethodCard


__all__ = [
    "BaseProposer",
    "Draft",
    "MethodCard",
    "MethodOptions",
    "MethodSpec",
    "Need",
    "OptionsError",
    "ProposalRequest",
    "Proposer",
    "SamplingParams",
    "StepFeedback",
    "Verifier",
    "VerifierSpec",
    "VerifyResult",
    "__version__",
    "get_registry",
    "hookimpl",
]
