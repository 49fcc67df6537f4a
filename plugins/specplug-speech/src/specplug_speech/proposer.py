"""``distil_whisper``: a distilled draft decoder drafting for its Whisper target.

The draft (:mod:`specplug.kit.whisper_draft`) shares the target's encoder, so it costs nothing per
utterance beyond its own cross-attention keys and values; per step it runs its one or two decoder
layers and a reduced output head for each drafted token. It keeps its own self-attention cache per
request, rolled back to what is still committed after each verification (the same
:class:`~specplug.kit.drafting.DraftCache` logic as ``sps``). At temperature 0 it drafts its argmax
chain; at temperature > 0 it samples and records ``q`` (over the full vocabulary, zero outside its
reduced one) so speculative sampling stays exact.

This module imports torch only when a draft is bound.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["DistilWhisperOptions", "DistilWhisperProposer"]

_DRAFT_STREAM = 0x51E3C4  # mixes into the draft's seeds so they differ from the engine's


class DistilWhisperOptions(MethodOptions):
    """Options of ``distil_whisper``."""

    draft: str | None = Field(
        None, description="The draft decoder folder ('specplug speech distill' prints it); default: the one distilled "
        "for this target with 2 layers under $SPECPLUG_CACHE/drafts."
    )
    num_layers: int = Field(2, ge=1, le=4, description="Which default draft to use when 'draft' is not given (1 or 2 layers).")
    stop_below: float = Field(0.0, ge=0.0, le=1.0, description="Stop drafting before a token whose draft probability is below this (0: never).")
    seed: int = Field(0, description="Seed of the draft's sampling at temperature > 0.")


class DistilWhisperProposer(BaseProposer):
    """Drafts a chain with a distilled draft decoder over the target's own encoder output."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: DistilWhisperOptions) -> None:
        self.options = options
        self.draft: Any = None
        self._bound_to: int | None = None
        self._caches: dict[str, Any] = {}
        self._generators: dict[str, Any] = {}
        self._requests = 0

    def bind_target(self, target: TargetInfo) -> None:
        if self._bound_to == id(target.model) and self.draft is not None:
            return
        from specplug.kit.whisper_draft import default_draft_dir, load_draft_decoder

        model = target.model
        if model is None or not getattr(model.config, "is_encoder_decoder", False):
            raise ValueError("distil_whisper drafts for a Whisper target (an encoder-decoder model); "
                             "use --model whisper-tiny.en, or sps for text models")
        folder = self.options.draft or default_draft_dir(model, self.options.num_layers)
        self.draft = load_draft_decoder(folder, model)
        self._caches.clear()
        self._bound_to = id(model)

    def start_request(self, request_id: str, prompt_ids) -> None:
        import torch

        from specplug.kit.whisper_draft import WhisperDraftCache

        if self.draft is None:
            raise RuntimeError("distil_whisper is not bound to a target: the engine calls bind_target first")
        self._caches[request_id] = self._new_cache(WhisperDraftCache)
        self._generators[request_id] = torch.Generator().manual_seed((self.options.seed * 1_000_003 + self._requests) ^ _DRAFT_STREAM)
        self._requests += 1

    def _new_cache(self, default):
        """The request's draft cache (a subclass with a draft of another shape overrides this)."""
        return default(self.draft)

    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        cache = self._caches.get(request.request_id)
        if cache is None:  # a request the engine did not start (defensive: start it now)
            self.start_request(request.request_id, request.prompt_ids)
            cache = self._caches[request.request_id]
        return draft_chain(cache, request.token_ids.tolist(), request.max_tokens, request.sampling,
                           self._generators[request.request_id], stop_below=self.options.stop_below)

    def finish_request(self, request_id: str) -> None:
        self._caches.pop(request_id, None)
        self._generators.pop(request_id, None)
