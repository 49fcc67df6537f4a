"""The ``draft_verify`` and ``swift`` proposers: the target drafts for itself with blocks skipped.

Both declare :attr:`~specplug.protocols.Need.target_model`: the engine hands over its own model in
``bind_target`` and the draft is a :func:`~specplug_layerskip.skipping.skip_view` of it (every
weight shared, never a second copy), with its own :class:`~specplug.kit.drafting.DraftCache`
per request.

- :class:`DraftVerifyProposer` (Draft&Verify, arXiv 2309.08168): the calibrated skip set, a chain
  drafted by :func:`~specplug.kit.drafting.draft_chain` that stops where the draft's confidence
  falls below the calibrated threshold (adaptive draft length).
- :class:`SwiftProposer` (SWIFT, arXiv 2410.06916): starts from its profile's layer set and keeps
  optimising it on the fly from the requests' own context (random draws with a Bayesian-optimiser
  suggestion every ``bayes_interval`` iterations, scored by matchness; a better set replaces the
  current one; the phase ends at ``target_matchness``, after ``tolerance`` iterations without
  progress or ``max_iterations``), and drafts confidence-aware trees: the chain stops below the
  threshold, and positions with low confidence get their next most likely tokens as siblings, all
  verified in one target forward by tree verification.

torch is imported when a proposer binds to its target, not when the module is imported.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, SamplingParams, TargetInfo
from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
from specplug_layerskip.profile import LayerSkipProfile, ProfileError, SkipSet, load_profile, model_fingerprint

__all__ = ["DraftVerifyProposer", "SwiftProposer", "draft_tree"]


class _LayerSkipProposer(BaseProposer):
    method: ClassVar[str]
    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_model})

    def __init__(self, options: DraftVerifyOptions, profile: LayerSkipProfile | None = None) -> None:
        self.options = options
        self._given_profile = profile
        self.profile: LayerSkipProfile | None = None
        self.model: Any = None
        self.view: Any = None
        self.vocab: Any = None
        self.caches: dict[str, Any] = {}
        self.generator: Any = None

    # -- binding --------------------------------------------------------------------------------
    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(
                f"{self.method} drafts with the target's own layers and needs the engine's model (Need.target_model); "
                "this engine did not provide it. Run it in specplug's reference engine."
            )
        if info.model is self.model and self.view is not None:
            return
        import torch

        fingerprint = model_fingerprint(info.model)
        profile = self._given_profile
        if profile is None:
            profile = load_profile(self.method, fingerprint, self.options.profile, info.name_or_path)
        elif profile.model_fingerprint != fingerprint:
            raise ProfileError(
                f"the {self.method} profile given was made for model {profile.model_fingerprint}, not this one ({fingerprint})"
            )
        if profile.num_layers != int(info.model.config.num_hidden_layers):
            raise ProfileError(f"the profile is for {profile.num_layers} layers; this model has {info.model.config.num_hidden_layers}")
        self.profile = profile
        self.model = info.model
        self.vocab = self._reduced_vocab(info)
        self.generator = torch.Generator().manual_seed(self.options.seed)
        self._set_skip(profile.skip)

    def _reduced_vocab(self, info: TargetInfo):
        size = self.options.vocab_size
        if size is None or size >= info.vocab_size:
            return None
        from specplug.kit.drafting import ReducedVocab

        ranking = self.profile.vocab_ranking
        if len(ranking) < size:
            raise ProfileError(
                f"vocab_size={size} but the profile ranks only {len(ranking)} tokens of its calibration text; "
                f"use vocab_size <= {len(ranking)} or leave it unset"
            )
        eos = getattr(info.model.config, "eos_token_id", None)
        always = [eos] if isinstance(eos, int) else list(eos or [])
        return ReducedVocab(np.asarray(list(ranking[:size]) + always, dtype=np.int64), info.vocab_size)

    def _set_skip(self, skip: SkipSet) -> None:
        from specplug_layerskip.skipping import skip_view

        self.skip = skip
        self.view = skip_view(self.model, skip, self.vocab)
        self.caches = {}  # caches of the old view are meaningless for the new one

    @property
    def threshold(self) -> float:
        return self.options.threshold if self.options.threshold is not None else self.profile.threshold

    def _cache(self, request_id: str):
        if self.view is None:
            raise RuntimeError(
                f"{self.method} was asked to propose before bind_target: it needs the target model "
                "(specplug's reference engine binds it; vLLM's custom_class path cannot run the target's layers)"
            )
        cache = self.caches.get(request_id)
        if cache is None:
            from specplug.kit.drafting import DraftCache

            cache = self.caches[request_id] = DraftCache(self.view, self.vocab)
        return cache

    # -- lifecycle ------------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.caches.pop(request_id, None)

    def finish_request(self, request_id: str) -> None:
        self.caches.pop(request_id, None)


class DraftVerifyProposer(_LayerSkipProposer):
    """Draft&Verify: a fixed calibrated skip set and a confidence-stopped chain."""

    method = "draft_verify"

    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        cache = self._cache(request.request_id)
        return draft_chain(cache, request.token_ids, request.max_tokens, request.sampling, self.generator, self.threshold)


class SwiftProposer(_LayerSkipProposer):
    """SWIFT: on-the-fly layer-set optimisation and confidence-aware (tree) drafts."""

    method = "swift"
    options: SwiftOptions

    def bind_target(self, info: TargetInfo) -> None:
        first = info.model is not self.model
        super().bind_target(info)
        if first:
            from specplug_layerskip.search import MaskOptimizer, locked_sublayers

            layers = self.profile.num_layers
            self.score: float | None = None  # matchness of the current set (SWIFT's "origin score")
            self.iterations = 0
            self.stale = 0
            self.optimizing = self.options.optimize
            self.history: list[tuple[int, float, bool]] = []  # (iteration, matchness, kept)
            self.search = MaskOptimizer(
                2 * layers, locked=locked_sublayers(layers), keep_one_of=range(layers), skips=max(1, self.profile.skip.size), seed=self.options.seed
            )
            self._request_steps: dict[str, int] = {}

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        super().start_request(request_id, prompt_ids)
        self._request_steps = {request_id: 0}

    def finish_request(self, request_id: str) -> None:
        super().finish_request(request_id)
        getattr(self, "_request_steps", {}).pop(request_id, None)

    # -- the optimisation phase -----------------------------------------------------------------
    def _matchness(self, skip: SkipSet, window: list[int]) -> float:
        from specplug_layerskip.calibration import Sequence_, matchness

        warm = min(8, len(window) // 2)
        return matchness(self.model, [Sequence_(window[:warm], window[warm:])], skip)

    def _optimize_once(self, request: ProposalRequest) -> None:
        window = request.token_ids[-self.options.context_window :].tolist()
        if self.score is None:
            self.score = self._matchness(self.skip, window)
        self.iterations += 1
        if self.iterations % self.options.bayes_interval == 0:
            mask = self.search.suggest()
        else:
            mask = self.search.random_mask()
        candidate = SkipSet.from_mask(mask, self.profile.num_layers)
        score = self._matchness(candidate, window)
        self.search.register(mask, score)
        better = score > self.score
        self.history.append((self.iterations, score, better))
        if better:
            self.score = score
            self.stale = 0
            self._set_skip(candidate)
            if score >= self.options.target_matchness:
                self.optimizing = False
        else:
            self.stale += 1
        if self.stale >= self.options.tolerance or self.iterations >= self.options.max_iterations:
            self.optimizing = False

    def propose(self, request: ProposalRequest) -> Draft:
        if self.view is None:
            self._cache(request.request_id)  # raises the bind_target error
        generated = len(request.token_ids) - request.num_prompt_tokens
        steps = self._request_steps.get(request.request_id, 0)
        if (
            self.optimizing
            and generated >= self.options.min_generated
            and steps < self.options.steps_per_request
            and len(request.token_ids) >= 16
        ):
            self._request_steps[request.request_id] = steps + 1
            self._optimize_once(request)
        cache = self._cache(request.request_id)
        if not self.options.tree:
            from specplug.kit.drafting import draft_chain

            return draft_chain(cache, request.token_ids, request.max_tokens, request.sampling, self.generator, self.threshold)
        return draft_tree(cache, request.token_ids, request.max_tokens, request.sampling, self.generator, self.threshold,
                          self.options.candidates)


def _candidates_for(confidence: float, counts: tuple[int, int, int, int]) -> int:
    if confidence > 0.95:
        return counts[0]
    if confidence > 0.8:
        return counts[1]
    if confidence > 0.5:
        return counts[2]
    return counts[3]


def draft_tree(cache, committed, budget: int, sampling: SamplingParams | None, generator, threshold: float,
               counts: tuple[int, int, int, int]) -> Draft:
    """A confidence-aware tree of at most ``budget`` nodes (SWIFT's drafting and candidate expansion).

    The chain: the draft's greedy (or, with sampling, sampled) token per position while its
    confidence, the largest probability, stays at or above ``threshold``. Then the nodes left in the
    budget go, shallowest position first, to siblings: at a position with confidence ``c`` the tree
    offers ``counts[band(c)]`` candidates in all (the chain token included, bands > 0.95, > 0.8,
    > 0.5, lower), the next most likely tokens; the position where the chain stopped gets candidates
    too. Greedy drafts are deterministic (no ``q``). With sampling, siblings are deterministic
    (``q`` one-hot) and come *before* the sampled chain token among their parent's children: they
    depend on the prefix only, so the multi-branch verifier stays exact (each proposal is drawn
    from the ``q`` it is checked against, independently of the ones tried before it).
    """
    import torch

    from specplug.verify.sampling import process_logits, sample_token

    sampling = sampling or SamplingParams()
    vocab = cache.vocab
    to_target = (lambda j: int(j)) if vocab is None else vocab.to_target
    chain: list[int] = []
    chain_q: list[torch.Tensor] = []
    levels: list[torch.Tensor] = []  # the draft distribution at each position (depth 1..)
    if budget <= 0:
        return Draft.empty()
    logits = cache.sync(committed)
    for depth in range(budget):
        dist = torch.softmax(logits.float(), -1) if sampling.greedy else process_logits(logits[None], sampling)[0]
        levels.append(dist)
        if float(dist.max()) < threshold:
            break
        index = int(dist.argmax()) if sampling.greedy else sample_token(dist, generator)
        chain.append(index)
        if not sampling.greedy:
            chain_q.append(dist)
        if depth + 1 < budget:
            logits = cache.feed([to_target(index)])
    spare = budget - len(chain)
    siblings: list[list[int]] = []  # draft-vocabulary indices per depth
    for depth, dist in enumerate(levels):
        has_chain = depth < len(chain)
        want = _candidates_for(float(dist.max()), counts) - int(has_chain)
        take: list[int] = []
        if want > 0 and spare > 0:
            top = torch.topk(dist, min(dist.shape[-1], want + 1)).indices.tolist()
            for j in top:
                if len(take) == min(want, spare):
                    break
                if sampling.greedy and has_chain and j == chain[depth]:
                    continue  # greedy: the chain token is the top-1 already
                take.append(int(j))
            spare -= len(take)
        siblings.append(take)
    tokens: list[int] = []
    parents: list[int] = []
    q_rows: list[torch.Tensor | int] = []  # a distribution, or a target id for a one-hot row
    parent = -1
    for depth in range(len(levels)):
        chain_node = None
        if sampling.greedy and depth < len(chain):
            chain_node = len(tokens)
            tokens.append(to_target(chain[depth])); parents.append(parent)
        for j in siblings[depth]:
            tokens.append(to_target(j)); parents.append(parent); q_rows.append(to_target(j))
        if not sampling.greedy and depth < len(chain):
            chain_node = len(tokens)
            tokens.append(to_target(chain[depth])); parents.append(parent); q_rows.append(chain_q[depth])
        if chain_node is None:
            break
        parent = chain_node
    if not tokens:
        return Draft.empty()
    if sampling.greedy:
        return Draft(np.asarray(tokens, dtype=np.int64), np.asarray(parents, dtype=np.int64))
    size = vocab.vocab_size if vocab is not None else levels[0].shape[-1]
    q = torch.zeros(len(tokens), size)
    for row, value in enumerate(q_rows):
        if isinstance(value, int):
            q[row, value] = 1.0
        else:
            q[row] = vocab.expand(value) if vocab is not None else value
    return Draft(np.asarray(tokens, dtype=np.int64), np.asarray(parents, dtype=np.int64), q)
