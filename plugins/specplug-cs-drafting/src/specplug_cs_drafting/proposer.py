"""The ``cs_drafting`` proposer: builds the cascade for the target and drafts with it.

Every neural drafter is layers of the target (a view sharing its weights, what ``specplug models
derive`` writes as a folder) or a model folder with the target's vocabulary. Each request gets its own
KV cache per level, dropped in ``finish_request``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

from specplug_cs_drafting.options import CascadeOptions, is_layer_spec

__all__ = ["CascadeProposer", "CascadeError"]


class CascadeError(ValueError):
    """A cascade that cannot draft for this target; the message names the drafter and the fix."""


class CascadeProposer(BaseProposer):
    """Drafts with a vertical cascade per level and a horizontal cascade over the positions."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: CascadeOptions) -> None:
        self.options = options
        self.models: list[Any] = []  # one causal LM per neural level, largest first
        self._bound_to: tuple | None = None
        self._levels: dict[str, list[Any]] = {}  # request id -> [ModelLevel..., MaxGramLevel]

    def bind_target(self, target: TargetInfo) -> None:
        key = (id(target.model), target.vocab_size)
        if key == self._bound_to and self.models:
            return
        self.models = [self._drafter(spec, target) for spec in self.options.drafters]
        self._levels.clear()
        self._bound_to = key

    def _drafter(self, spec: str, target: TargetInfo):
        from specplug.kit.draft_models import DraftModelError, bind_draft_model

        try:
            model, _ = bind_draft_model(target, method=f"cs_drafting drafter {spec!r}",
                                        **({"layers": spec} if is_layer_spec(spec) else {"model": spec}))
        except DraftModelError as err:  # every drafter of the cascade must share the target's tokens
            raise CascadeError(str(err)) from None
        return model

    def levels(self, request_id: str) -> list[Any]:
        """The request's cascade, top drafter first, Max-Gram last."""
        return self._levels[request_id]

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        from specplug.kit.target import TargetModel

        from specplug_cs_drafting.cascade import MaxGramLevel, ModelLevel

        if not self.models:
            raise CascadeError("cs_drafting has no drafters yet: the engine must call bind_target before the first request")
        lower: Any = MaxGramLevel(self.options.max_ngram)
        levels = [lower]
        for model in reversed(self.models):  # build from the bottom up
            lower = ModelLevel(TargetModel(model), lower, self.options.inner_k)
            levels.insert(0, lower)
        self._levels[request_id] = levels

    def propose(self, request: ProposalRequest) -> Draft:
        if request.request_id not in self._levels:
            self.start_request(request.request_id, request.prompt_ids)
        levels = self._levels[request.request_id]
        context = request.token_ids.tolist()
        draft: list[int] = []
        for level, length in zip(levels, self.options.lengths):
            take = min(length, request.max_tokens - len(draft))
            if take <= 0:
                continue
            tokens = level.generate(context + draft, take)
            draft += tokens
            if len(tokens) < take:  # Max-Gram found nothing more
                break
        return Draft.chain(draft[: request.max_tokens])

    def finish_request(self, request_id: str) -> None:
        self._levels.pop(request_id, None)
