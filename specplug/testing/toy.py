"""A deterministic toy target and a greedy speculative loop around it, for fast property tests.

Shared by the plugins' tests (jacobi, lookahead, recycling): ``from specplug.testing.toy import
ToyTarget, plain, speculate``. No model and no torch: a step costs microseconds, so property tests
can run thousands of them.

The target's greedy token is a hash of the last two context tokens; its top-k is that token followed
by k - 1 other hashed tokens. The loop verifies chains and trees greedily and reports
``target_predictions`` and ``target_topk`` like the reference engine does.
"""

from __future__ import annotations

import numpy as np

from specplug.protocols import Draft, ProposalRequest, StepFeedback

__all__ = ["ToyTarget", "plain", "speculate"]


class ToyTarget:
    """A target over ``vocab`` tokens whose next-token ranking depends only on the last ``order`` tokens."""

    def __init__(self, vocab: int, seed: int = 0, order: int = 2):
        self.vocab, self.seed, self.order = vocab, seed, order

    def topk(self, ctx: list[int], k: int) -> list[int]:
        key = tuple(ctx[-self.order :])
        rng = np.random.default_rng(abs(hash((self.seed,) + key)) % (2**32))
        return rng.permutation(self.vocab)[:k].tolist()

    def greedy(self, ctx: list[int]) -> int:
        return self.topk(ctx, 1)[0]


def plain(target: ToyTarget, prompt: list[int], n: int) -> list[int]:
    """Plain greedy decoding: the ``n`` tokens the target emits after ``prompt``."""
    ctx = list(prompt)
    for _ in range(n):
        ctx.append(target.greedy(ctx))
    return ctx[len(prompt) :]


def speculate(proposer, target: ToyTarget, prompt: list[int], n: int, k: int, topk: int = 4, rid: str = "r"):
    """Greedy speculative decoding of ``n`` tokens; returns (new tokens, steps, drafts)."""
    ctx = list(prompt)
    proposer.start_request(rid, np.asarray(prompt, dtype=np.int64))
    steps, drafts = 0, []
    while len(ctx) - len(prompt) < n:
        budget = min(k, n - (len(ctx) - len(prompt)) - 1)
        draft = Draft.empty()
        if budget > 0:
            draft = proposer.propose(ProposalRequest(rid, np.asarray(ctx, dtype=np.int64), len(prompt), budget))
            assert isinstance(draft, Draft) and len(draft) <= budget, (len(draft), budget)
            assert all(0 <= t < target.vocab for t in draft.token_ids.tolist())
        drafts.append(draft)
        paths = [ctx + draft.token_ids[draft.path_to(i)].tolist() for i in range(len(draft))]
        tops = np.array([target.topk(c, topk) for c in [ctx] + paths])  # [num_nodes + 1, topk]
        preds = tops[:, 0]
        parents = draft.parent_array()
        accepted, node = [], -1
        while True:
            want = preds[node + 1]
            child = next((i for i in range(len(draft)) if parents[i] == node and draft.token_ids[i] == want), None)
            if child is None:
                break
            accepted.append(child)
            node = child
        emitted = draft.token_ids[accepted].tolist() + [int(preds[node + 1])]
        ctx += emitted
        steps += 1
        proposer.observe(StepFeedback(rid, draft, accepted, emitted, target_predictions=preds.copy(), target_topk=tops.copy()))
    proposer.finish_request(rid)
    return ctx[len(prompt) : len(prompt) + n], steps, drafts
