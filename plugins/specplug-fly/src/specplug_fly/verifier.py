"""FLy's loose verification (Li, Xu, Li, Yang, Xu et al., ICLR 2026, arXiv 2511.22972). Lossy.

Exact-match verification rejects a drafted token the moment it differs from the target's own choice,
even when it is a differently worded but valid continuation. FLy keeps such a token when two tiers
agree (greedy decoding, the paper's setting):

1. **entropy gate**: the target's distribution at that position (temperature 1) has entropy of at
   least ``entropy_threshold`` nats: several tokens are plausible there. Near-deterministic positions
   (code syntax, numbers) keep exact matching.
2. **deferred window**: the ``window`` draft tokens after the mismatch all equal the target's own
   choice *given the mismatched token* (the rows the tree forward already computed): the target goes
   on with the draft instead of correcting it. A mismatch with fewer than ``window`` draft tokens
   after it cannot be confirmed in this step and is rejected.

The bonus token is the target's argmax after the accepted prefix. With ``entropy_threshold`` above
any entropy, FLy is greedy match (tested). Chains only; temperature > 0 is refused (FLy's rule
compares argmaxes). Left out: the paper's multi-level acceleration of the drafter itself.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug_fly.options import FlyOptions

__all__ = ["FlyVerifier", "loose_accept_length"]


def loose_accept_length(argmax: list[int], entropy: np.ndarray, tokens: list[int], threshold: float, window: int) -> int:
    """How many draft tokens FLy accepts: ``argmax[i]``/``entropy[i]`` are the target's choice and
    entropy at draft position ``i`` (after the root and the first ``i`` draft tokens)."""
    g = len(tokens)
    i = 0
    while i < g:
        if tokens[i] == argmax[i]:
            i += 1
            continue
        confirmed = (i + window < g  # the window's tokens were drafted
                     and entropy[i] >= threshold
                     and all(tokens[j] == argmax[j] for j in range(i + 1, i + 1 + window)))
        if not confirmed:
            break
        i += 1 + window
    return i


def _chain_length(draft: Draft, vocab: int) -> int:
    parents = draft.parent_array()
    if len(draft) and not np.array_equal(parents, np.arange(-1, len(draft) - 1)):
        raise ValueError("fly verifies a chain; this draft is a tree: use a chain drafter such as sps")
    ok = draft.in_vocab(vocab)
    return int(np.argmin(ok)) if not ok.all() else len(draft)


class FlyVerifier:
    """FLy's entropy gate and deferred window over a greedy chain (see the module docstring)."""

    lossless: ClassVar[bool] = False
    #: verifies chains only: a tree draft is refused with a ValueError naming the tree
    chains_only: ClassVar[bool] = True
    #: FLy's rule compares the target's argmax: it verifies greedy decoding only and refuses sampling
    greedy_only: ClassVar[bool] = True

    def __init__(self, options: FlyOptions | None = None) -> None:
        self.options = options or FlyOptions()

    def verify(self, target_logits, draft: Draft, sampling: SamplingParams, generator=None) -> VerifyResult:
        import torch

        from specplug.verify.sampling import check_shapes

        if not sampling.greedy:
            raise ValueError("fly verifies greedy decoding (its rule compares the target's argmax); use temperature 0, "
                             "or a sampling verifier such as speculative_sampling")
        check_shapes(target_logits, draft)
        logits = target_logits.float()
        g = _chain_length(draft, logits.shape[-1])
        logp = torch.log_softmax(logits, -1)
        entropy = (-(logp.exp() * logp).sum(-1)).cpu().numpy()
        argmax = logits.argmax(-1).tolist()
        tokens = [int(t) for t in draft.token_ids[:g]]
        tau = loose_accept_length(argmax, entropy, tokens, self.options.entropy_threshold, self.options.window)
        return VerifyResult(list(range(tau)), tokens[:tau] + [int(argmax[tau])])
