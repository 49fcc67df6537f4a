"""A small-model drafter: sample draft tokens from a cheaper causal LM with the target's vocabulary.

Used here to draft for the digits image model (the 1-layer drafter ``train-digits`` trains beside
the target), so that exact speculative sampling and LANTERN have a drafter whose ``q`` they can
check against, as in the LANTERN paper (which drafts with EAGLE heads). Each step runs the drafter
over the committed tokens once and then one token at a time with its own KV cache; the draft's
``probs`` are the distributions the tokens were sampled from. At ``temperature = 0`` it drafts the
drafter's greedy tokens without probabilities (a deterministic proposal).

This is not a registered method (the catalogue's independent-drafter cards belong to their own
plugins); the image benchmark and ``specplug image sample`` build it directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specplug.protocols import BaseProposer, Draft, ProposalRequest

__all__ = ["DraftModelProposer"]


class DraftModelProposer(BaseProposer):
    """Drafts by sampling ``model`` (a transformers causal LM with the target's vocabulary)."""

    def __init__(self, model: Any, temperature: float = 1.0, seed: int = 0):
        if temperature < 0:
            raise ValueError(f"drafter temperature must be >= 0, got {temperature}")
        self.model = model
        self.temperature = temperature
        self.seed = seed
        self._generators: dict[str, Any] = {}
        self._requests = 0

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        import torch

        self._generators[request_id] = torch.Generator().manual_seed(self.seed * 1_000_003 + self._requests)
        self._requests += 1

    def finish_request(self, request_id: str) -> None:
        self._generators.pop(request_id, None)

    def propose(self, request: ProposalRequest) -> Draft:
        import torch
        from transformers import DynamicCache

        if request.max_tokens <= 0:
            return Draft.empty()
        generator = self._generators.get(request.request_id)
        if generator is None:
            self.start_request(request.request_id, request.prompt_ids)
            generator = self._generators[request.request_id]
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        with torch.inference_mode():
            ids = torch.as_tensor(request.token_ids, dtype=torch.long)[None]  # [1, n]
            cache = DynamicCache(config=self.model.config)
            logits = self.model(input_ids=ids, past_key_values=cache, use_cache=True).logits[0, -1]  # [V]
            for i in range(request.max_tokens):
                if self.temperature == 0:
                    token = int(logits.argmax())
                else:
                    q = torch.softmax(logits.double() / self.temperature, dim=-1)  # [V]
                    token = int(torch.multinomial(q, 1, generator=generator))
                    rows.append(q)
                tokens.append(token)
                if i + 1 < request.max_tokens:
                    step = torch.tensor([[token]], dtype=torch.long)
                    logits = self.model(input_ids=step, past_key_values=cache, use_cache=True).logits[0, -1]
        probs = torch.stack(rows).numpy() if rows else None  # [k, V] or None
        return Draft.chain(tokens, probs=probs)
