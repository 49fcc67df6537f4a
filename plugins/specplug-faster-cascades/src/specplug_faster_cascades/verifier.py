"""The speculative cascade's verification: speculative sampling against the cascade's distribution."""

from __future__ import annotations

from typing import ClassVar

import torch

from specplug.protocols import Draft, SamplingParams, VerifyResult
from specplug.verify.sampling import check_shapes, draft_probs, process_logits, sample_token

from specplug_faster_cascades.rules import DeferralOptions, defers

__all__ = ["SpeculativeCascadeVerifier"]


class SpeculativeCascadeVerifier:
    """Per drafted position: the deferral rule picks ``pi`` (``q`` kept, ``p`` deferred); the token is
    accepted with ``min(1, pi(x) / q(x))``, else replaced by a sample of ``norm(max(0, pi - q))``. At
    temperature 0 that is: keep the small model's token unless the position defers and the large model's
    argmax differs. The token after a fully accepted draft is the large model's (the drafter has no ``q``
    there). ``deferrals`` counts the positions deferred so far (for the benchmark)."""

    lossless: ClassVar[bool] = False
    #: verifies chains only: a tree draft is refused with a ValueError naming the tree
    chains_only: ClassVar[bool] = True

    def __init__(self, options: DeferralOptions | None = None) -> None:
        self.options = options or DeferralOptions()
        self.positions = 0
        self.deferrals = 0

    def verify(self, target_logits: torch.Tensor, draft: Draft, sampling: SamplingParams,
               generator: torch.Generator | None = None) -> VerifyResult:
        check_shapes(target_logits, draft)
        if not draft.is_chain:
            raise ValueError("the faster_cascades verifier checks a chain; got a tree draft")
        draft = draft.without_invalid(target_logits.shape[-1])  # padding ends the chain (a prefix is kept)
        q = draft_probs(draft, target_logits.device)
        if q is None:
            # a drafter that gives no distribution proposes deterministically: q is one-hot at its token,
            # as vLLM's rejection sampler takes such drafts (--method faster_cascades gives the real q)
            q = torch.nn.functional.one_hot(torch.as_tensor(draft.token_ids, dtype=torch.long),
                                            target_logits.shape[-1]).to(target_logits.device, torch.float32)
        logits = target_logits.float()
        # the rule compares confidences under the decoding temperature (plain softmax when greedy)
        p_rule = torch.softmax(logits if sampling.greedy else logits / sampling.temperature, -1)
        p = p_rule if sampling.greedy else process_logits(logits, sampling)
        tokens = draft.token_ids.tolist()
        accepted: list[int] = []
        for i, x in enumerate(tokens):
            qi, pi_large = q[i], p_rule[i]
            tv = 0.5 * float((pi_large - qi).abs().sum())
            deferred = defers(self.options.rule, self.options.alpha, float(qi.max()), float(pi_large.max()), tv)
            self.positions += 1
            self.deferrals += int(deferred)
            if not deferred:
                accepted.append(i)
                continue
            if sampling.greedy:
                best = int(logits[i].argmax())
                if best == x:
                    accepted.append(i)
                    continue
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [best])
            target = p[i]
            ratio = float(target[x]) / max(float(qi[x]), 1e-30)
            u = float(torch.rand((), generator=generator))
            if u < min(1.0, ratio):
                accepted.append(i)
                continue
            residual = (target - qi).clamp_min(0)
            total = float(residual.sum())
            nxt = sample_token(residual / total, generator) if total > 0 else sample_token(target, generator)
            return VerifyResult(accepted, [tokens[n] for n in accepted] + [nxt])
        row = p[len(tokens)]
        bonus = int(logits[len(tokens)].argmax()) if sampling.greedy else sample_token(row, generator)
        return VerifyResult(accepted, tokens + [bonus])
