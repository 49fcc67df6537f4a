"""Staged speculative decoding (Benjamin Spector, Chris Re; arXiv 2308.04623) in specplug's reference
engine: a derived draft model proposes a tree-structured batch (the ``budget`` continuations of
highest cumulative draft probability, :func:`specplug_staged_spec.tree.staged_tree`), and its own
generation is sped up by a second stage of speculation whose drafter is a backoff trigram over the
request's context (:class:`specplug_staged_spec.ngram.BackoffNgram`), verified greedily by the draft
model. The target verifies the tree with the tree verifier: greedy match, or at temperature > 0 the
rule for a deterministic proposal (the tree holds the draft's top tokens, so no ``q`` is sent).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from specplug.kit.tree_drafting import TreeProposer, TreeSourceOptions
from specplug.protocols import ProposalRequest, StepFeedback

from specplug_staged_spec.ngram import BackoffNgram
from specplug_staged_spec.tree import StagedStats, staged_tree

__all__ = ["StagedSpecOptions", "StagedSpecProposer"]


class StagedSpecOptions(TreeSourceOptions):
    source: Literal["draft"] = Field("draft", description="a derived draft model (draft_model or draft_layers): the "
                                     "second stage speculates a draft *model*'s forwards")
    top_k: int = Field(4, ge=1, description="children of each expanded node that become candidates")
    expand_batch: int = Field(4, ge=1, description="nodes the draft expands per forward (the likeliest candidates)")
    spec_len: int = Field(4, ge=0, description="n-gram tokens speculated after each node the draft expands (0: no second stage)")
    ngram_order: int = Field(3, ge=1, description="order of the backoff n-gram (the paper's trigram: 3)")
    ngram_discount: float = Field(0.5, gt=0.0, lt=1.0, description="absolute discount of the backoff n-gram")

    @model_validator(mode="before")
    @classmethod
    def _draft_only(cls, data):
        if isinstance(data, dict) and data.get("source") in ("eagle", "eagle3"):
            raise ValueError(f"staged_spec drafts with a draft model whose own forwards the n-gram stage speculates; "
                             f"source={data['source']} (a trained head) is not supported: give draft_model or draft_layers")
        return data


class StagedSpecProposer(TreeProposer):
    """See the module docstring. ``stats`` sums every step's :class:`StagedStats`."""

    tree_method = "staged_spec"

    def __init__(self, options: StagedSpecOptions | None = None) -> None:
        super().__init__(options or StagedSpecOptions(draft_layers="0-3"))
        self.ngrams: dict[str, BackoffNgram] = {}
        self.stats = StagedStats()

    def _ngram(self) -> BackoffNgram:
        return BackoffNgram(self.options.ngram_order, self.options.ngram_discount)

    def start_request(self, request_id: str, prompt_ids) -> None:
        super().start_request(request_id, prompt_ids)
        self.ngrams[request_id] = self._ngram()

    def finish_request(self, request_id: str) -> None:
        super().finish_request(request_id)
        self.ngrams.pop(request_id, None)

    def build_tree(self, drafter, budget: int, request: ProposalRequest):
        o = self.options
        context = request.token_ids.tolist()
        ngram = None
        if o.spec_len > 0:
            ngram = self.ngrams.setdefault(request.request_id, self._ngram())
            ngram.update(context)
        tree, stats = staged_tree(drafter, budget, o.top_k, o.expand_batch, o.spec_len, ngram, context)
        self.stats.add(stats)
        return tree

    def observe(self, feedback: StepFeedback) -> None:
        super().observe(feedback)
