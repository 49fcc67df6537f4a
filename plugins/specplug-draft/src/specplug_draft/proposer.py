"""Speculative decoding with an independent draft model (``sps``): options and proposer.

Leviathan, Kalman, Matias (arXiv 2211.17192) and Chen et al. (arXiv 2302.01318): a smaller causal LM
that shares the target's vocabulary drafts ``k`` tokens autoregressively; the target scores them in
one forward and keeps the longest acceptable prefix plus a token of its own. At temperature 0 the
draft is its argmax chain and the target keeps the tokens equal to its own argmax; at temperature
> 0 the draft samples and records its distribution ``q`` for every token, and speculative sampling
(accept with ``min(1, p/q)``, else resample from ``norm(max(0, p - q))``) keeps the output
distributed exactly as the target's.

Where the draft comes from (exactly one of the options):

- ``model``: a folder (or ``smollm2-135m``, or a hub id) of any causal LM with the target's
  tokenizer, loaded once at bind time. ``specplug models derive BASE --layers 0-3`` writes one from
  a subset of a model's layers (SmolLM2 has no published smaller sibling).
- ``layers``: the same derived draft without a folder: a view of the target that runs only those
  layers (:func:`specplug.kit.drafting.model_view`; it shares the target's weights, so it costs
  no memory and computes exactly what the derived folder computes). vLLM needs the folder.

The draft keeps its own KV cache per request (:class:`~specplug.kit.drafting.DraftCache`), rolled
back to what is still committed after each verification; it is dropped in ``finish_request``.
The time the draft takes is the proposer's time, which the engine counts in every speedup.

Reduced draft vocabulary (``vocab_size``): SmolLM2's LM head (49152 x 576) is about a fifth of a
forward. The draft can score only the ``N`` ids most frequent in calibration text
(:mod:`specplug_draft.vocab`: Spec-Bench prompts that no benchmark subset uses) and map its choice
back to the target id; the target still verifies over its whole vocabulary, so output stays lossless.

This module imports torch and transformers only when a draft is bound.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from specplug.kit.draft_models import DraftModelError, tokenizer_fingerprint
from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["DraftModelError", "DraftOptions", "DraftProposer", "tokenizer_fingerprint"]


_DRAFT_STREAM = 0x5B5D4AF7  # mixes into the draft's seeds so they differ from the engine's


class DraftOptions(MethodOptions):
    """Options of ``sps``. Give the draft as ``model`` (a folder) or as ``layers`` of the target."""

    model: str | None = Field(
        None, description="The draft model: a folder (e.g. from 'specplug models derive'), smollm2-135m, or a hub id."
    )
    layers: str | None = Field(
        None, description="Draft with these decoder layers of the target itself (e.g. '0-3'), sharing its weights; "
        "the same model 'specplug models derive TARGET --layers ...' writes."
    )
    vocab_size: int | None = Field(
        None, ge=1, description="Score only this many draft ids: the most frequent in held-out Spec-Bench prompts "
        "(or in vocab_file); None: the whole vocabulary."
    )
    vocab_file: str | None = Field(
        None, description="A JSON list of target token ids ordered by frequency (most frequent first) to take the "
        "reduced vocabulary from, instead of the held-out Spec-Bench prompts."
    )
    stop_below: float = Field(
        0.0, ge=0.0, le=1.0, description="Stop drafting before a token whose draft probability is below this (0: never)."
    )
    num_draft_tokens: int | None = Field(
        None, ge=1, description="Draft at most this many tokens per step; None: as many as the engine's k allows."
    )
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None, description="dtype of a draft loaded from 'model' (default: the target's)."
    )
    seed: int = Field(0, description="Seed of the draft's sampling at temperature > 0 (each request gets its own stream).")

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value  # -o layers=0 reads as 0

    @model_validator(mode="after")
    def _one_source(self) -> DraftOptions:
        if (self.model is None) == (self.layers is None):
            raise ValueError(
                "give exactly one of 'model' (a draft folder, e.g. from 'specplug models derive smollm2-135m --layers 0-3') "
                "or 'layers' (e.g. '0-3': draft with those layers of the target)"
            )
        if self.layers is not None and self.dtype is not None:
            raise ValueError("'dtype' applies to a draft loaded from 'model'; a 'layers' draft runs in the target's dtype")
        if self.vocab_file is not None and self.vocab_size is None:
            raise ValueError("'vocab_file' needs 'vocab_size' (how many of its ids the draft scores)")
        return self


class DraftProposer(BaseProposer):
    """Drafts a chain with an independent causal LM (or a layer subset of the target)."""

    def __init__(self, options: DraftOptions) -> None:
        self.options = options
        # the target's own weights are needed only for a 'layers' draft
        self.needs = frozenset({Need.target_model}) if options.layers is not None else frozenset()
        self.draft_model: Any = None  # the bound draft (a view with the reduced head where asked)
        self.vocab: Any = None  # ReducedVocab or None
        self.info: dict[str, Any] = {}  # what was bound: draft source, layers, vocabulary, fingerprints
        self._bound_to: tuple | None = None
        self._caches: dict[str, Any] = {}  # request id -> DraftCache
        self._generators: dict[str, Any] = {}
        self._requests = 0

    # -- binding ------------------------------------------------------------------------------
    def bind_target(self, target: TargetInfo) -> None:
        """Load (or view) the draft for this target; refuse a draft that does not share its vocabulary."""
        key = (id(target.model), target.vocab_size, id(target.tokenizer))
        if key == self._bound_to and self.draft_model is not None:
            return  # the engine binds before every generate call; the draft is already here
        from specplug.kit.draft_models import bind_draft_model
        from specplug.kit.drafting import model_view

        opts = self.options
        self._caches.clear()
        model, info = bind_draft_model(target, method="sps", layers=opts.layers, model=opts.model, dtype=opts.dtype)
        self.info.update(info)
        self.vocab = self._reduced_vocab(target) if opts.vocab_size is not None else None
        self.draft_model = model_view(model, None, self.vocab) if self.vocab is not None else model
        self.info["draft_vocab"] = len(self.vocab) if self.vocab is not None else target.vocab_size
        self._bound_to = key

    def _reduced_vocab(self, target: TargetInfo):
        from specplug.kit.drafting import ReducedVocab

        from specplug_draft.vocab import calibration_vocab, read_vocab_file

        opts = self.options
        if opts.vocab_file is not None:
            ranked = read_vocab_file(opts.vocab_file, target.vocab_size)
            always = _special_ids(target)
            vocab = ReducedVocab(np.concatenate([ranked[: opts.vocab_size], np.asarray(always, dtype=np.int64)]), target.vocab_size)
            self.info["vocab_source"] = opts.vocab_file
            return vocab
        if target.tokenizer is None:
            raise DraftModelError(
                "a reduced draft vocabulary is counted in calibration text, which needs the target's tokenizer; "
                "this engine has none: give 'vocab_file' (a JSON list of token ids) instead"
            )
        vocab, source = calibration_vocab(target.tokenizer, opts.vocab_size, target.vocab_size, _special_ids(target))
        self.info["vocab_source"] = source
        return vocab

    # -- lifecycle ----------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        import torch

        from specplug.kit.drafting import DraftCache

        if self.draft_model is None:
            raise DraftModelError(
                "sps has no draft yet: the engine must call bind_target before the first request. "
                "In vLLM run it as the native draft_model method: 'specplug vllm-config sps --model DRAFT_FOLDER'"
            )
        self._caches[request_id] = DraftCache(self.draft_model, self.vocab)
        # a stream of its own: seeded like the engine's (seed + i), the draft's draws would be correlated
        # with the verifier's uniforms, and speculative sampling would no longer be exact
        seed = int(np.random.SeedSequence([self.options.seed, self._requests, _DRAFT_STREAM]).generate_state(1, np.uint64)[0] >> 1)
        self._generators[request_id] = torch.Generator().manual_seed(seed)
        self._requests += 1

    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        cache = self._caches.get(request.request_id)
        if cache is None:  # an engine that skipped start_request: start it now
            self.start_request(request.request_id, request.prompt_ids)
            cache = self._caches[request.request_id]
        k = request.max_tokens
        if self.options.num_draft_tokens is not None:
            k = min(k, self.options.num_draft_tokens)
        if k < 1:
            return Draft.empty()
        if cache.lm.max_positions is not None:  # the draft must not run past its own positions
            k = min(k, cache.lm.max_positions - len(request.token_ids))
            if k < 1:
                return Draft.empty()
        return draft_chain(cache, request.token_ids.tolist(), k, request.sampling, self._generators[request.request_id],
                           self.options.stop_below)

    def finish_request(self, request_id: str) -> None:
        self._caches.pop(request_id, None)
        self._generators.pop(request_id, None)


def _special_ids(target: TargetInfo) -> list[int]:
    """Special token ids (EOS, chat markers) a reduced draft vocabulary always keeps."""
    tok = target.tokenizer
    ids = list(getattr(tok, "all_special_ids", []) or []) if tok is not None else []
    eos = getattr(getattr(target.model, "config", None), "eos_token_id", None)
    ids += [eos] if isinstance(eos, int) else list(eos or [])
    return sorted({int(i) for i in ids if i is not None and 0 <= int(i) < target.vocab_size})
