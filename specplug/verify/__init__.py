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

A draft id outside the vocabulary is never accepted (:func:`in_vocab`): vLLM pads drafts with ``-1``
(:data:`PADDING`), which means "no draft here", for that node and everything below it.
"""

from specplug.verify.greedy import GreedyMatchVerifier
from specplug.verify.sampling import PADDING, in_vocab, process_logits, sample_token, tree_children, without_invalid
from specplug.verify.speculative import SpeculativeSamplingVerifier
from specplug.verify.tree import TreeVerifier
from specplug.verify.typical import TypicalAcceptanceOptions, TypicalAcceptanceVerifier

__all__ = [
    "PADDING",
    "GreedyMatchVerifier",
    "SpeculativeSamplingVerifier",
    "TreeVerifier",
    "TypicalAcceptanceOptions",
    "TypicalAcceptanceVerifier",
    "in_vocab",
    "process_logits",
    "sample_token",
    "tree_children",
    "without_invalid",
]
