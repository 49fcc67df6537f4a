"""MagicDec: the target drafts for itself over a StreamingLLM-style sparse KV cache.

Chen, Tiwari, Sadhukhan, Chen, Shi, Yen, Chen, "MagicDec: Breaking the Latency-Throughput Tradeoff for
Long Context Generation with Speculative Decoding" (arXiv 2408.11049). At long context the decode step
is dominated by reading the KV cache; a draft that runs the *same* weights over a fixed, small KV budget
(StreamingLLM: the first ``sinks`` positions, the attention sinks, plus the most recent window) costs
almost nothing in attention however long the context grows, and agrees with the target often enough
that the target's one verification pass over ``k + 1`` tokens pays. The verification uses the full
cache, so the output is exactly the target's.

specplug's version (reference engine; ``Need.target_model``): the proposer holds its own cache of the
target (:class:`specplug.kit.sparse_kv.StreamingCache`, shared with TriForce's draft), separate from the engine's, so the engine's verification never reads it:

- the prompt is prefilled with full attention (in chunks), then cut to ``sinks`` + the latest
  ``kv_budget - sinks`` positions (:func:`streaming_positions`), keeping their true RoPE positions;
- each step the tokens committed since the last step are fed over the sparse cache, the cache is cut
  back to the budget, and ``k`` tokens are drafted one at a time (:func:`specplug.kit.drafting.draft_chain`:
  greedy, or sampled with ``q`` recorded for speculative sampling); the draft tokens are dropped at
  the next step.

Left out: sharing the target's full-attention KV for newly committed tokens (the reference engine does
not hand its cache to proposers, so those entries are computed by the draft over its sparse cache), and
MagicDec's batched serving and its choice of budget from a roofline model.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from specplug.kit.sparse_kv import streaming_positions
from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["MagicDecOptions", "MagicDecProposer", "streaming_positions"]


class MagicDecOptions(MethodOptions):
    """Options of ``magicdec``. The paper's StreamingLLM drafts use budgets of a few hundred to a few thousand."""

    kv_budget: int = Field(256, ge=1, description="KV positions the draft attends to (sinks + recent window); 0 is refused.")
    sinks: int = Field(16, ge=0, description="Attention-sink positions (the first ones) kept in the draft's cache.")

    @model_validator(mode="after")
    def _check(self) -> MagicDecOptions:
        if self.sinks >= self.kv_budget:
            raise ValueError(f"sinks ({self.sinks}) must be smaller than kv_budget ({self.kv_budget}): the window needs room")
        return self


class MagicDecProposer(BaseProposer):
    """MagicDec (see the module docstring). One request at a time, as the reference engine decodes."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: MagicDecOptions | None = None):
        self.options = options or MagicDecOptions()
        self.model = None
        self.cache = None  # specplug.kit.sparse_kv.StreamingCache of the current request
        self.request_id: str | None = None
        self.generator = None

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError("magicdec drafts with the target's own weights: the engine must hand over its model")
        limit = getattr(info.model.config, "max_position_embeddings", None)
        if limit and self.options.kv_budget >= limit:
            raise ValueError(f"kv_budget ({self.options.kv_budget}) is not smaller than the model's context ({limit}): "
                             "the sparse cache would be the full cache; choose a kv_budget below the context")
        self.model = info.model
        self.cache = None

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.finish_request(self.request_id)

    def finish_request(self, request_id: str | None) -> None:
        if request_id is not None and request_id == self.request_id:
            self.cache, self.request_id = None, None

    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        if self.model is None:
            raise ValueError("magicdec was asked to propose before bind_target: run it in specplug's reference engine")
        if self.cache is None or request.request_id != self.request_id:
            from specplug.kit.sparse_kv import StreamingCache

            self.cache = StreamingCache(self.model, self.options.sinks, self.options.kv_budget)
            self.request_id = request.request_id
        if request.max_tokens <= 0:
            return Draft.empty()
        return draft_chain(self.cache, request.token_ids, request.max_tokens, request.sampling, self.generator)
