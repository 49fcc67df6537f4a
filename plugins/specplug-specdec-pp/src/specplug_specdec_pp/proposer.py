"""The ``specdec_pp`` proposer: the draft model drafts while the predicted chance that the target rejects
at least one of its tokens stays at or below ``threshold``.

SpecDec++'s stopping rule: with ``r_i`` the head's predicted rejection probability of draft token ``i``,
drafting stops once ``1 - prod_{j <= i} (1 - r_j) > threshold``. Here ``r_i`` is read from the draft's
state at the position that *predicts* token ``i`` (before it is drawn), and the rule decides whether to
draft token ``i`` at all; the first token is always drafted. The decision therefore depends on the prefix
only, never on the token drawn, so at temperature > 0 the recorded ``q`` stays the distribution the token
came from and speculative sampling stays exact (a stop that looked at the drawn token would bias it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["SpecDecPPOptions", "SpecDecPPProposer"]

_STREAM = 0x2405_1971


class SpecDecPPOptions(MethodOptions):
    head: str | None = Field(None, description="Folder of the trained acceptance head; default: the one 'specplug train specdec_pp' writes.")
    threshold: float = Field(0.7, description="h in [0, 1]: stop once the predicted chance of a rejection so far exceeds it.")
    max_draft: int = Field(8, ge=1, le=64, description="The longest draft.")
    seed: int = Field(0, description="Seed of the draft's sampling at temperature > 0.")

    @model_validator(mode="after")
    def _check(self) -> SpecDecPPOptions:
        if not 0.0 <= self.threshold <= 1.0 or math.isnan(self.threshold):
            raise ValueError(f"threshold must lie in [0, 1] (a probability), got {self.threshold}")
        return self


class SpecDecPPProposer(BaseProposer):
    needs = frozenset({Need.target_model})

    def __init__(self, options: SpecDecPPOptions) -> None:
        self.options = options
        self.head: Any = None
        self.draft_model: Any = None
        self._bound_to: Any = None
        self._caches: dict[str, Any] = {}
        self._generators: dict[str, Any] = {}
        self._requests = 0
        self.lengths: list[int] = []

    def bind_target(self, target: TargetInfo) -> None:
        if self._bound_to is target.model and self.head is not None:
            return
        from specplug.kit.drafting import model_view
        from specplug.kit.heads import default_head_dir, load_head, target_fingerprint

        if target.model is None:
            raise ValueError("specdec_pp drafts with layers of the target, so it needs the engine's model (reference engine)")
        folder = Path(self.options.head).expanduser() if self.options.head else default_head_dir(target_fingerprint(target.model), "specdec_pp")
        self.head, _ = load_head(folder, target.model)
        self.head.requires_grad_(False)
        self.draft_model = model_view(target.model, self.head.draft_layers)
        self._caches.clear()
        self._bound_to = target.model

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        import torch

        from specplug.kit.drafting import DraftCache

        if self.head is None:
            raise ValueError("specdec_pp has no head yet: the engine must call bind_target before the first request")
        self._caches[request_id] = DraftCache(self.draft_model)
        seed = int(np.random.SeedSequence([self.options.seed, self._requests, _STREAM]).generate_state(1, np.uint64)[0] >> 1)
        self._generators[request_id] = torch.Generator().manual_seed(seed)
        self._requests += 1

    @staticmethod
    def _feed(cache, tokens: list[int]):
        """Append ``tokens`` to the draft's cache: (logits, final state) after the last one."""
        logits, states = cache.lm.forward_with_states(tokens, [-1], logits_to_keep=1)
        cache.tokens.extend(int(t) for t in tokens)
        return logits[-1], states[-1, 0]

    def _sync(self, cache, committed: list[int]):
        same, limit = 0, min(len(cache.tokens), len(committed) - 1)
        while same < limit and cache.tokens[same] == committed[same]:
            same += 1
        if same < cache.lm.cache_len:
            cache.lm.rollback(same)
        del cache.tokens[same:]
        return self._feed(cache, committed[same:])

    def rejection_probability(self, state) -> float:
        import torch

        with torch.inference_mode():
            return float(torch.sigmoid(self.head(state.to(next(self.head.parameters()).dtype))))

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug.protocols import SamplingParams
        from specplug.verify.sampling import process_logits, sample_token

        if request.request_id not in self._caches:
            self.start_request(request.request_id, request.prompt_ids)
        cache = self._caches[request.request_id]
        sampling = request.sampling or SamplingParams()
        k = min(self.options.max_draft, request.max_tokens)
        if k < 1:
            return Draft.empty()
        logits, state = self._sync(cache, request.token_ids.tolist())
        survive = 1.0  # predicted chance that every token so far is accepted
        tokens, rows = [], []
        for i in range(k):
            survive *= 1.0 - self.rejection_probability(state)
            if i > 0 and 1.0 - survive > self.options.threshold:
                break
            if sampling.greedy:
                token = int(logits.argmax())
            else:
                q = process_logits(logits[None], sampling)[0]
                token = sample_token(q, self._generators[request.request_id])
                rows.append(q)
            tokens.append(token)
            if i + 1 < k:
                logits, state = self._feed(cache, [token])
        self.lengths.append(len(tokens))
        return Draft.chain(tokens, probs=torch.stack(rows) if rows else None)

    def finish_request(self, request_id: str) -> None:
        self._caches.pop(request_id, None)
        self._generators.pop(request_id, None)
