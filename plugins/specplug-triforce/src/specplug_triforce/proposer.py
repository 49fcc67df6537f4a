"""TriForce: hierarchical speculation for long sequences.

Sun, Chen, Yang, Tian, Chen, "TriForce: Lossless Acceleration of Long Sequence Generation with
Hierarchical Speculative Decoding" (COLM 2024, arXiv 2404.11912). Two bottlenecks share a long-context
decode step: the model weights and the KV cache. TriForce speculates at two levels:

- a **small draft model** over a StreamingLLM cache (the authors' JackFram/Llama-68M with 16 sinks and
  a recent window) drafts ``draft_k`` tokens (the paper's gamma_1) for
- the **target over a retrieval cache** (:mod:`specplug_triforce.retrieval`: the prompt's top chunks
  by query-to-mean-key score, within ``kv_budget``), which verifies them with speculative sampling
  (greedy: exact match), keeps the accepted ones and adds its own next token; this repeats until it has
  ``k`` tokens (the paper's gamma_2), which it hands as the draft to
- the **full target** (the engine, full cache), which verifies them.

The middle level's tokens are distributed exactly as the target-over-retrieval-cache's own, so it
reports that distribution as ``q`` for each of them; the engine's verification against the full
target then keeps the output exactly the target's (greedy: token-identical).

specplug's version runs in the reference engine (``Need.target_model``: the middle level is the
target's own weights). The draft model is a folder (``model``, e.g. a derived SmolLM2 draft) or
``layers`` of the target, bound as every independent drafter binds it (:mod:`specplug.kit.draft_models`).

Left out: the paper's offloading system (the full cache on CPU, the retrieval cache on the GPU) and
its CUDA graphs; copying the full-attention keys and values of newly committed tokens into the
retrieval cache (the reference engine does not hand its cache to proposers, so the middle level
computes those entries itself over its retrieval cache); the tree variant (Sequoia trees for the
draft model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, SamplingParams, TargetInfo

__all__ = ["TriForceCounts", "TriForceOptions", "TriForceProposer"]


class TriForceOptions(MethodOptions):
    """Options of ``triforce``. The draft model is ``model`` (a folder) or ``layers`` of the target."""

    model: str | None = Field(None, description="The small draft model's folder (e.g. from 'specplug models derive smollm2-135m --layers 0-3').")
    layers: str | None = Field(None, description="Draft with these decoder layers of the target itself (e.g. '0-3'), sharing its weights.")
    kv_budget: int = Field(256, ge=1, description="KV positions of the prompt the middle level (target over the retrieval cache) keeps; 0 is refused.")
    chunk_size: int = Field(8, ge=1, description="Positions per retrieval chunk (the paper's default is 8); at most kv_budget.")
    draft_k: int = Field(2, ge=1, le=32, description="Tokens the small draft model drafts before each middle-level verification (the paper's gamma_1).")
    draft_kv_budget: int = Field(512, ge=2, description="KV positions of the draft model's StreamingLLM cache (sinks + recent window).")
    draft_sinks: int = Field(16, ge=0, description="Attention-sink positions in the draft model's StreamingLLM cache.")

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> TriForceOptions:
        if (self.model is None) == (self.layers is None):
            raise ValueError("triforce needs a small draft model: give exactly one of 'model' (a draft folder, e.g. from "
                             "'specplug models derive smollm2-135m --layers 0-3') or 'layers' (e.g. '0-3': those layers of the target)")
        if self.chunk_size > self.kv_budget:
            raise ValueError(f"chunk_size ({self.chunk_size}) is larger than kv_budget ({self.kv_budget}): the retrieval "
                             "cache could not hold one chunk; choose chunk_size <= kv_budget")
        if self.draft_sinks >= self.draft_kv_budget:
            raise ValueError(f"draft_sinks ({self.draft_sinks}) must be smaller than draft_kv_budget ({self.draft_kv_budget})")
        return self


class TriForceCounts:
    """What the middle level did (for the cost split and the tests)."""

    def __init__(self) -> None:
        self.draft_tokens = 0  # tokens the small draft model proposed to the middle level
        self.draft_accepted = 0  # ... that the middle level accepted
        self.middle_forwards = 0  # middle-level verification forwards
        self.draft_s = 0.0  # seconds in the small draft model
        self.middle_s = 0.0  # seconds in the middle level (its build included)


class TriForceProposer(BaseProposer):
    """TriForce (see the module docstring). One request at a time, as the reference engine decodes."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: TriForceOptions) -> None:
        self.options = options
        self.target_model: Any = None
        self.draft_model: Any = None
        self._bound_to: Any = None
        self.middle = None  # RetrievalCache of the current request
        self.draft = None  # StreamingCache of the draft model, current request
        self.request_id: str | None = None
        self.generator = None
        self.counts = TriForceCounts()

    def bind_target(self, target: TargetInfo) -> None:
        key = (id(target.model), target.vocab_size)
        if key == self._bound_to:
            return
        opts = self.options
        if target.model is None:
            raise ValueError("triforce's middle level is the target over a retrieval cache: the engine must hand over its "
                             "model (run it in specplug's reference engine)")
        limit = getattr(target.model.config, "max_position_embeddings", None)
        if limit and opts.chunk_size >= limit:
            raise ValueError(f"chunk_size ({opts.chunk_size}) is not smaller than the model's context ({limit}): choose a "
                             "chunk_size of a few positions (the paper uses 8)")
        if limit and opts.kv_budget >= limit:
            raise ValueError(f"kv_budget ({opts.kv_budget}) is not smaller than the model's context ({limit}): the retrieval "
                             "cache would be the full cache; choose a kv_budget below the context")
        from specplug.kit.draft_models import DraftModelError, bind_draft_model

        try:
            draft, _ = bind_draft_model(target, method="triforce", layers=opts.layers, model=opts.model)
        except DraftModelError:
            raise
        except Exception as error:  # a folder that is missing or is not a model
            if opts.model is None:
                raise
            raise ValueError(f"triforce could not load its draft model {opts.model!r} ({error}); write one with "
                             "'specplug models derive smollm2-135m --layers 0-3' and pass its folder as 'model', "
                             "or draft with the target's own layers ('layers': '0-3')") from error
        self.target_model, self.draft_model = target.model, draft
        self.middle = self.draft = self.request_id = None
        self._bound_to = key

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.finish_request(self.request_id)

    def finish_request(self, request_id: str | None) -> None:
        if request_id is not None and request_id == self.request_id:
            self.middle = self.draft = self.request_id = None

    def propose(self, request: ProposalRequest) -> Draft:
        import time

        import torch

        from specplug.kit.drafting import draft_chain
        from specplug.kit.sparse_kv import StreamingCache
        from specplug.verify.greedy import GreedyMatchVerifier
        from specplug.verify.sampling import process_logits
        from specplug.verify.speculative import SpeculativeSamplingVerifier

        from specplug_triforce.retrieval import RetrievalCache

        if self.target_model is None:
            raise ValueError("triforce was asked to propose before bind_target: run it in specplug's reference engine")
        opts = self.options
        if self.middle is None or request.request_id != self.request_id:
            self.middle = RetrievalCache(self.target_model, opts.kv_budget, opts.chunk_size)
            self.draft = StreamingCache(self.draft_model, opts.draft_sinks, opts.draft_kv_budget)
            self.request_id = request.request_id
        if request.max_tokens <= 0:
            return Draft.empty()
        sampling = request.sampling
        greedy = sampling is None or sampling.greedy
        verifier = GreedyMatchVerifier() if greedy else SpeculativeSamplingVerifier()
        committed = [int(t) for t in request.token_ids]
        t0 = time.perf_counter()
        pending = self.middle.sync(committed, request.num_prompt_tokens)  # the middle level's uncached tokens
        self.counts.middle_s += time.perf_counter() - t0
        out: list[int] = []
        q_rows: list[torch.Tensor] = []
        while len(out) < request.max_tokens:
            t0 = time.perf_counter()
            proposal = draft_chain(self.draft, committed + out, min(opts.draft_k, request.max_tokens - len(out)), sampling, self.generator)
            t1 = time.perf_counter()
            logits = self.middle.forward(pending + proposal.token_ids.tolist(), logits_to_keep=len(proposal) + 1)
            result = verifier.verify(logits, proposal, sampling or SamplingParams(), self.generator)
            kept = result.num_accepted
            self.middle.keep(pending + proposal.token_ids.tolist(), len(pending) + kept)
            if not greedy:  # q of each emitted token: the middle level's distribution at its position
                q_rows.extend(process_logits(logits[: kept + 1], sampling))
            out += result.tokens
            pending = result.tokens[-1:]  # the middle level's own token is not cached yet
            self.counts.draft_tokens += len(proposal)
            self.counts.draft_accepted += kept
            self.counts.middle_forwards += 1
            self.counts.draft_s += t1 - t0
            self.counts.middle_s += time.perf_counter() - t1
        out = out[: request.max_tokens]
        if greedy:
            return Draft.chain(out)
        return Draft.chain(out, probs=torch.stack(q_rows[: len(out)]))

