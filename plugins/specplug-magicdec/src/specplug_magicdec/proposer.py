"""MagicDec: the target drafts for itself over a StreamingLLM-style sparse KV cache.

Chen, Tiwari, Sadhukhan, Chen, Shi, Yen, Chen, "MagicDec: Breaking the Latency-Throughput Tradeoff for
Long Context Generation with Speculative Decoding" (arXiv 2408.11049). At long context the decode step
is dominated by reading the KV cache; a draft that runs the *same* weights over a fixed, small KV budget
(StreamingLLM: the first ``sinks`` positions, the attention sinks, plus the most recent window) costs
almost nothing in attention however long the context grows, and agrees with the target often enough
that the target's one verification pass over ``k + 1`` tokens pays. The verification uses the full
cache, so the output is exactly the target's.

specplug's version (reference engine; ``Need.target_model``): the proposer holds its own cache of the
target (:class:`SparseCache`), separate from the engine's, so the engine's verification never reads it:

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

from collections.abc import Sequence

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["MagicDecOptions", "MagicDecProposer", "SparseCache", "streaming_positions"]

PREFILL_CHUNK = 1024


def streaming_positions(length: int, sinks: int, budget: int) -> np.ndarray:
    """Cache entries StreamingLLM keeps of ``length``: the first ``sinks`` and the latest ``budget - sinks``.

    >>> streaming_positions(10, 2, 5).tolist()
    [0, 1, 7, 8, 9]
    >>> streaming_positions(4, 2, 5).tolist()
    [0, 1, 2, 3]
    """
    if length <= budget:
        return np.arange(length)
    return np.concatenate([np.arange(sinks), np.arange(length - (budget - sinks), length)])


class MagicDecOptions(MethodOptions):
    """Options of ``magicdec``. The paper's StreamingLLM drafts use budgets of a few hundred to a few thousand."""

    kv_budget: int = Field(256, ge=1, description="KV positions the draft attends to (sinks + recent window); 0 is refused.")
    sinks: int = Field(16, ge=0, description="Attention-sink positions (the first ones) kept in the draft's cache.")

    @model_validator(mode="after")
    def _check(self) -> MagicDecOptions:
        if self.sinks >= self.kv_budget:
            raise ValueError(f"sinks ({self.sinks}) must be smaller than kv_budget ({self.kv_budget}): the window needs room")
        return self


class SparseCache:
    """The target's weights with a StreamingLLM cache, in step with one request (the ``draft_chain`` interface)."""

    vocab = None  # the full vocabulary

    def __init__(self, model, sinks: int, budget: int) -> None:
        from specplug.kit.target import TargetModel

        self.lm = TargetModel(model)
        self.sinks, self.budget = sinks, budget
        self.positions: list[int] = []  # true position of each cache entry
        self.synced = 0  # committed tokens absorbed at the last sync
        self.mark = 0  # cache entries at the last sync (later ones are draft tokens)

    def _forward(self, tokens: Sequence[int], start: int):
        import torch

        logits = self.lm.forward(list(tokens), position_ids=torch.arange(start, start + len(tokens)), logits_to_keep=1)
        self.positions.extend(range(start, start + len(tokens)))
        return logits[-1]

    def sync(self, committed: Sequence[int]):
        """Logits after the root: drop the last step's draft entries, feed the new committed tokens, cut to the budget."""
        committed = [int(t) for t in committed]
        if self.lm.cache_len > self.mark:
            self.lm.rollback(self.mark)
            del self.positions[self.mark :]
        if self.synced >= len(committed):  # a shorter text: another request reused the cache
            self.lm.reset()
            self.positions, self.synced = [], 0
        new = committed[self.synced :]
        first_fill = self.synced == 0
        logits = None
        chunk = PREFILL_CHUNK if first_fill else len(new)
        for i in range(0, len(new), chunk):  # the prompt: full attention, in chunks
            logits = self._forward(new[i : i + chunk], self.synced + i)
        keep = streaming_positions(self.lm.cache_len, self.sinks, self.budget)
        if keep.shape[0] < self.lm.cache_len:
            self.lm.keep(keep.tolist())
            self.positions = [self.positions[i] for i in keep.tolist()]
        self.synced, self.mark = len(committed), self.lm.cache_len
        return logits

    def feed(self, tokens: Sequence[int]):
        return self._forward(tokens, self.positions[-1] + 1)


class MagicDecProposer(BaseProposer):
    """MagicDec (see the module docstring). One request at a time, as the reference engine decodes."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: MagicDecOptions | None = None):
        self.options = options or MagicDecOptions()
        self.model = None
        self.cache: SparseCache | None = None
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
            self.cache = SparseCache(self.model, self.options.sinks, self.options.kv_budget)
            self.request_id = request.request_id
        if request.max_tokens <= 0:
            return Draft.empty()
        return draft_chain(self.cache, request.token_ids, request.max_tokens, request.sampling, self.generator)
