"""Built-in refinement rules (verifiers), engine-free: torch only, no transformers, no vllm.

Every verifier follows :class:`specplug.protocols.Verifier`: ``target_logits[0]`` is the target's
row after the root, ``target_logits[i + 1]`` the row after draft node ``i``; the result is the
accepted path (node indices, root-first) and the emitted tokens (accepted tokens + one bonus token).

- :class:`GreedyMatchVerifier` (``greedy_match``): exact match against the target's own token.
- :class:`SpeculativeSamplingVerifier` (``speculative_sampling``): Leviathan et al. / Chen et al.
  rejection sampling; on trees, SpecInfer's multi-branch form. Lossless.
- :class:`TypicalAcceptanceVerifier` (``typical_acceptance``): Medusa's entropy-adaptive threshold. Lossy.
- :class:`TreeVerifier` (``tree_verification``): greedy match at temperature 0, multi-branch
  speculative sampling otherwise. Lossless.

A draft id outside the vocabulary is never accepted (:meth:`specplug.protocols.Draft.in_vocab`): vLLM
pads drafts with ``-1`` (:attr:`Draft.PADDING <specplug.protocols.Draft.PADDING>`), which means "no
draft here", for that node and everything below it.
"""

from __future__ import annotations

import importlib

#: public name -> the module of this package that defines it. Loaded on first use, so importing
#: ``specplug.verify.specs`` (the registry does) does not import torch.
_EXPORTS = {
    "GreedyMatchVerifier": "greedy",
    "process_logits": "sampling",
    "sample_token": "sampling",
    "tree_children": "sampling",
    "SpeculativeSamplingVerifier": "speculative",
    "TreeVerifier": "tree",
    "TypicalAcceptanceVerifier": "typical",
    "TypicalAcceptanceOptions": "options",
    "BUILTIN_VERIFIERS": "specs",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'specplug.verify' has no attribute {name!r}")
    return getattr(importlib.import_module(f"specplug.verify.{module}"), name)


__all__ = [
    "BUILTIN_VERIFIERS",
    "GreedyMatchVerifier",
    "SpeculativeSamplingVerifier",
    "TreeVerifier",
    "TypicalAcceptanceOptions",
    "TypicalAcceptanceVerifier",
    "process_logits",
    "sample_token",
    "tree_children",
]
