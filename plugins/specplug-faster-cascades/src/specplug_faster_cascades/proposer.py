"""The speculative cascade's small model: drafts a chain and records its distribution ``q`` at every
position, greedy included (the deferral rule reads ``max q`` and ``TV(p, q)``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

from specplug_faster_cascades.rules import CascadeDrafterOptions

__all__ = ["CascadeDrafter"]

_STREAM = 0x2405_1926


class CascadeDrafter(BaseProposer):
    needs = frozenset({Need.target_model})

    def __init__(self, options: CascadeDrafterOptions) -> None:
        self.options = options
        self.model: Any = None
        self._bound_to: tuple | None = None
        self._caches: dict[str, Any] = {}
        self._generators: dict[str, Any] = {}
        self._requests = 0

    def bind_target(self, target: TargetInfo) -> None:
        key = (id(target.model), target.vocab_size)
        if key == self._bound_to and self.model is not None:
            return
        if self.options.layers is not None:
            from specplug.kit.drafting import model_view
            from specplug.models.derive import parse_layers

            if target.model is None:
                raise ValueError("faster_cascades with 'layers' needs the target model; pass a small-model folder as 'model'")
            total = target.num_layers or int(target.model.config.num_hidden_layers)
            self.model = model_view(target.model, parse_layers(self.options.layers, total))
        else:
            import torch
            from transformers import AutoModelForCausalLM

            from specplug.models import resolve_model

            model = AutoModelForCausalLM.from_pretrained(resolve_model(self.options.model), dtype=torch.float32).eval()
            size = int(model.get_output_embeddings().weight.shape[0])
            if size != target.vocab_size:
                raise ValueError(f"the small model has {size} vocabulary ids, the target {target.vocab_size}: "
                                 "use a small model with the target's tokenizer (e.g. 'specplug models derive TARGET --layers 0-3')")
            self.model = model
        self._caches.clear()
        self._bound_to = key

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        import torch

        from specplug.kit.drafting import DraftCache

        if self.model is None:
            raise ValueError("faster_cascades has no small model yet: the engine must call bind_target first")
        self._caches[request_id] = DraftCache(self.model)
        seed = int(np.random.SeedSequence([self.options.seed, self._requests, _STREAM]).generate_state(1, np.uint64)[0] >> 1)
        self._generators[request_id] = torch.Generator().manual_seed(seed)
        self._requests += 1

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        from specplug.protocols import SamplingParams
        from specplug.verify.sampling import process_logits, sample_token

        if request.request_id not in self._caches:
            self.start_request(request.request_id, request.prompt_ids)
        cache = self._caches[request.request_id]
        sampling = request.sampling or SamplingParams()
        k = request.max_tokens
        if k < 1:
            return Draft.empty()
        logits = cache.sync(request.token_ids.tolist())
        tokens, rows = [], []
        for i in range(k):
            if sampling.greedy:
                q = torch.softmax(logits.float(), -1)
                token = int(q.argmax())
            else:
                q = process_logits(logits[None], sampling)[0]
                token = sample_token(q, self._generators[request.request_id])
            tokens.append(token)
            rows.append(q)
            if i + 1 < k:
                logits = cache.feed([token])
        return Draft.chain(tokens, probs=torch.stack(rows))

    def finish_request(self, request_id: str) -> None:
        self._caches.pop(request_id, None)
        self._generators.pop(request_id, None)
