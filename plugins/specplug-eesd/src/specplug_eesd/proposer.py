"""The ``eesd`` proposer: the target's first N layers plus the trained early-exit adapter draft a chain
whose length EESD's Thompson-sampling controller chooses per step (one controller per request).

The draft shares every weight with the target (a layer view, :func:`specplug.kit.drafting.model_view`)
and keeps its own KV cache per request. Greedy drafts are the early exit's argmax chain, sampled drafts
carry ``q``; the target's verifier keeps the output lossless either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback, TargetInfo

__all__ = ["EesdOptions", "EesdProposer"]

_STREAM = 0x2406_0385


class EesdOptions(MethodOptions):
    head: str | None = Field(None, description="Folder of the trained early-exit head; default: the one 'specplug train eesd' writes for the target.")
    max_draft: int = Field(8, ge=1, le=64, description="The longest draft the controller may choose.")
    controller: Literal["thompson", "fixed"] = Field(
        "thompson", description="thompson: EESD's Beta-TS length control; fixed: always max_draft (the baseline).")
    cost_ratio: float | None = Field(
        None, ge=0.0, description="Cost of one draft token relative to one target forward; None: exit_layer / target layers.")
    prior_alpha: float = Field(1.0, gt=0.0, description="Beta prior's alpha (pseudo-accepted tokens).")
    prior_beta: float = Field(1.0, gt=0.0, description="Beta prior's beta (pseudo-rejections).")
    seed: int = Field(0, description="Seed of the controller's and the draft's sampling.")

    @model_validator(mode="after")
    def _check(self) -> EesdOptions:
        if self.controller == "fixed" and self.cost_ratio is not None:
            raise ValueError("'cost_ratio' is used by the thompson controller only; drop it with controller=fixed")
        return self


class EesdProposer(BaseProposer):
    needs = frozenset({Need.target_model})

    def __init__(self, options: EesdOptions) -> None:
        self.options = options
        self.draft_model: Any = None
        self.head: Any = None
        self.cost_ratio = 0.0
        self._bound_to: Any = None
        self._caches: dict[str, Any] = {}
        self._controllers: dict[str, Any] = {}
        self._generators: dict[str, Any] = {}
        self._requests = 0
        self.lengths: list[int] = []  # every chosen draft length (for benchmarks and tests)

    def bind_target(self, target: TargetInfo) -> None:
        if self._bound_to is target.model and self.draft_model is not None:
            return
        import torch.nn as nn

        from specplug.kit.drafting import model_view
        from specplug.kit.heads import default_head_dir, load_head, target_fingerprint

        if target.model is None:
            raise ValueError("eesd drafts with the target's own first layers, so it needs the engine's model (reference engine)")
        folder = Path(self.options.head).expanduser() if self.options.head else default_head_dir(target_fingerprint(target.model), "eesd")
        head, _ = load_head(folder, target.model)
        total = target.num_layers or int(target.model.config.num_hidden_layers)
        view = model_view(target.model, list(range(head.exit_layer)))
        view.model._modules["norm"] = nn.Sequential(head, target.model.model.norm)  # adapter, then the target's norm
        self.head, self.draft_model = head, view
        self.cost_ratio = self.options.cost_ratio if self.options.cost_ratio is not None else head.exit_layer / total
        self._caches.clear()
        self._bound_to = target.model

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        import torch

        from specplug.kit.drafting import DraftCache

        from specplug_eesd.controller import ThompsonLengthController

        if self.draft_model is None:
            raise ValueError("eesd has no early exit yet: the engine must call bind_target before the first request")
        seed = int(np.random.SeedSequence([self.options.seed, self._requests, _STREAM]).generate_state(1, np.uint64)[0] >> 1)
        self._caches[request_id] = DraftCache(self.draft_model)
        self._generators[request_id] = torch.Generator().manual_seed(seed)
        self._controllers[request_id] = ThompsonLengthController(
            self.options.max_draft, self.cost_ratio, (self.options.prior_alpha, self.options.prior_beta), seed=seed)
        self._requests += 1

    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        if request.request_id not in self._caches:
            self.start_request(request.request_id, request.prompt_ids)
        if self.options.controller == "fixed":
            length = min(self.options.max_draft, request.max_tokens)
        else:
            length = self._controllers[request.request_id].choose(request.max_tokens)
        self.lengths.append(length)
        if length < 1:
            return Draft.empty()
        return draft_chain(self._caches[request.request_id], request.token_ids.tolist(), length, request.sampling,
                           self._generators[request.request_id])

    def observe(self, feedback: StepFeedback) -> None:
        controller = self._controllers.get(feedback.request_id)
        if controller is not None:
            controller.update(len(feedback.draft), len(feedback.accepted_nodes))

    def finish_request(self, request_id: str) -> None:
        for table in (self._caches, self._controllers, self._generators):
            table.pop(request_id, None)
