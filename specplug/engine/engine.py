"""The reference engine: any transformers causal LM, any Proposer, any Verifier.

One step of one request:

1. the proposer drafts up to ``min(k, tokens left - 1)`` nodes (the step emits accepted + 1 tokens,
   so a draft never pushes the request past ``max_new_tokens``);
2. one target forward over the uncached committed tokens (the whole prompt at the first step, the
   previous bonus token after) plus the draft nodes, with a tree mask for tree drafts;
3. the verifier picks the accepted path and the bonus token from the rows at the root and nodes;
4. the KV cache drops the rejected nodes (a crop for chains, a gather for trees), the emitted tokens
   are appended (cut after EOS), and the proposer observes the outcome.

The proposer is not asked for a draft when only one token is left (nothing could be accepted), and
``observe`` follows exactly the steps where ``propose`` was called.

Model drafters: a proposer with ``bind_target`` gets a :class:`~specplug.protocols.TargetInfo` (with
the engine's own model for :attr:`~specplug.protocols.Need.target_model`) before its first request.
For :attr:`~specplug.protocols.Need.target_hidden_states` the engine prefills the prompt but its last
token before the first ``propose`` (so the first step is drafted too), keeps the states of every
committed position (the pending tokens and the accepted nodes of each forward) and hands each
position over once in ``ProposalRequest.hidden_states``. Drafting time (the proposer's, model
included) is in ``stats.draft_s`` and in the wall time every speedup is computed from.

Plain decoding is the same loop with an empty draft, so baseline and speculative runs share every
line but the proposer call.

Draft length control: with ``control`` (a :class:`~specplug.kit.k_control.ControlConfig` or its
mapping), a :class:`~specplug.kit.k_control.KController` decides per step how many of the draft's
tokens the target verifies (``0``: a plain step), from the acceptance it measured and this engine's
verify cost per token count (each step's forward time, prefill steps left out); in the adaptive
mode a request whose last decision was ``0`` is drafted for only every ``probe_every`` steps. Tree
drafts are cut to their first ``k`` nodes, measured on their first chain. The controller of the last
``generate`` call is :attr:`ReferenceEngine.controller` (its ``log`` and ``summary()``).

Batching: requests run one after another, each with its own KV cache (a loop, not a batched
forward); statistics are per request, and :meth:`GenerationStats.merge` sums them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from specplug.engine.stats import GenerationResult, GenerationStats
from specplug.kit.k_control import ControlConfig, KController, RowStep
from specplug.kit.seq2seq import target_for
from specplug.protocols import Draft, Need, ProposalRequest, Proposer, SamplingParams, StepFeedback, TargetInfo, Verifier

__all__ = ["ReferenceEngine", "resolve_verifier", "run_method"]

SUPPORTED_NEEDS = frozenset(Need)
DEFAULT_VERIFIER = "tree_verification"


def resolve_verifier(verifier: Verifier | str | None, options: Mapping[str, Any] | None = None) -> Verifier:
    """A verifier object from an instance, a verifier id, or ``None`` (``tree_verification``:
    greedy match at temperature 0, multi-branch speculative sampling otherwise; lossless)."""
    if verifier is not None and not isinstance(verifier, str):
        if not callable(getattr(verifier, "verify", None)):
            raise TypeError(f"{verifier!r} is not a Verifier (it has no verify method)")
        return verifier
    from specplug.verify.specs import BUILTIN_VERIFIERS

    key = (verifier or DEFAULT_VERIFIER).strip().lower().replace("-", "_")
    if key in BUILTIN_VERIFIERS:  # built-ins need no catalogue lookup
        return BUILTIN_VERIFIERS[key].build(options)
    from specplug.registry import get_registry

    return get_registry().verifier(key).build(options)


class ReferenceEngine:
    """Drives one target model.

    :param model: a transformers causal LM (in eval mode; its device and dtype are used as they are).
    :param tokenizer: optional; used to decode ``GenerationResult.text`` and to find EOS.
    :param eos_token_id: an id or ids that end a request; default: the tokenizer's, else the
        model config's. ``None`` everywhere means requests end only at ``max_new_tokens``.
    :param feedback_topk: how many top ids ``StepFeedback.target_topk`` holds per position.
    """

    def __init__(self, model, tokenizer=None, eos_token_id: int | Sequence[int] | None = None, feedback_topk: int = 8):
        self.model = model
        self.tokenizer = tokenizer
        self.target = target_for(model)  # Seq2SeqTarget for encoder-decoder models (Whisper), see kit/seq2seq
        self.feedback_topk = feedback_topk
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = tokenizer.eos_token_id
        if eos_token_id is None:
            eos_token_id = getattr(model.config, "eos_token_id", None)
        if eos_token_id is None:
            self.eos_ids: frozenset[int] = frozenset()
        elif isinstance(eos_token_id, int):
            self.eos_ids = frozenset({eos_token_id})
        else:
            self.eos_ids = frozenset(int(e) for e in eos_token_id)
        self._ids = itertools.count()
        self.controller: KController | None = None

    # -- public API -----------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        proposer: Proposer | None = None,
        verifier: Verifier | str | None = None,
        k: int = 5,
        max_new_tokens: int = 64,
        sampling: SamplingParams | None = None,
        seed: int = 0,
        control: ControlConfig | Mapping[str, Any] | None = None,
    ) -> list[GenerationResult]:
        """Decode every prompt (lists of token ids); ``proposer=None`` is plain decoding.

        Request ``i`` samples with a CPU generator seeded ``seed + i``. ``control``: decide each
        step's draft length with a :class:`~specplug.kit.k_control.KController` (``k`` is its most).
        """
        sampling = sampling or SamplingParams()
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise TypeError("prompts must be a list of token-id lists (tokenize text first)")
        if not prompts:
            raise ValueError("no prompts given")
        if k < 1:
            raise ValueError(f"k (draft tokens per step) must be >= 1, got {k}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        checked = [self._check_prompt(i, p) for i, p in enumerate(prompts)]
        if proposer is not None:
            missing = set(getattr(proposer, "needs", frozenset())) - SUPPORTED_NEEDS
            if missing:
                raise ValueError(f"the reference engine cannot provide {sorted(missing)} that {type(proposer).__name__} needs")
            bind = getattr(proposer, "bind_target", None)
            if callable(bind):
                bind(self.target_info())
        rule = resolve_verifier(verifier)
        controller = KController(dict(control) if isinstance(control, Mapping) else control, k) if control is not None and proposer is not None else None
        self.controller = controller
        results = []
        for i, prompt in enumerate(checked):
            generator = torch.Generator().manual_seed(seed + i)
            results.append(self._generate_one(prompt, proposer, rule, k, max_new_tokens, sampling, generator, controller))
        if controller is not None:
            controller.flush()
        return results

    def target_info(self) -> TargetInfo:
        """What model drafters are told about this engine's target (its model included)."""
        config = self.model.config
        return TargetInfo(
            vocab_size=self.target.vocab_size,
            num_layers=getattr(config, "decoder_layers", None) or getattr(config, "num_hidden_layers", None),
            hidden_size=getattr(config, "hidden_size", None),
            tokenizer=self.tokenizer,
            name_or_path=getattr(config, "_name_or_path", None) or None,
            model=self.model,
        )

    # -- internals ------------------------------------------------------------------------------
    def _check_prompt(self, index: int, prompt: Sequence[int]) -> list[int]:
        ids = [int(t) for t in np.asarray(prompt, dtype=np.int64).reshape(-1).tolist()]
        if not ids:
            raise ValueError(f"prompt {index} is empty: give at least one token")
        bad = [t for t in ids if not 0 <= t < self.target.vocab_size]
        if bad:
            raise ValueError(f"prompt {index} has token ids outside the vocabulary [0, {self.target.vocab_size}): {bad[:5]}")
        if self.target.max_positions and len(ids) >= self.target.max_positions:
            raise ValueError(f"prompt {index} has {len(ids)} tokens; the model takes at most {self.target.max_positions}")
        return ids

    def _check_draft(self, draft: Draft, proposer: Proposer) -> Draft:
        """The draft without padding (``-1``: no draft from there on); other ids outside the vocabulary are an error."""
        if not isinstance(draft, Draft):
            raise TypeError(f"{type(proposer).__name__}.propose returned {type(draft).__name__}, not a Draft")
        if len(draft) and (draft.token_ids.min() < Draft.PADDING or draft.token_ids.max() >= self.target.vocab_size):
            raise ValueError(f"{type(proposer).__name__} drafted token ids outside [0, {self.target.vocab_size})")
        return draft.without_invalid(self.target.vocab_size)

    def _generate_one(
        self,
        prompt: list[int],
        proposer: Proposer | None,
        verifier: Verifier,
        k: int,
        max_new_tokens: int,
        sampling: SamplingParams,
        generator: torch.Generator,
        controller: KController | None = None,
    ) -> GenerationResult:
        target = self.target
        target.reset()
        request_id = f"req-{next(self._ids)}"
        needs = frozenset(getattr(proposer, "needs", frozenset())) if proposer is not None else frozenset()
        layers = tuple(getattr(proposer, "hidden_state_layers", ())) if Need.target_hidden_states in needs else None
        if layers is not None and not layers:
            raise ValueError(f"{type(proposer).__name__} needs target_hidden_states but lists no hidden_state_layers")
        unsent: list[torch.Tensor] = []  # hidden states of committed positions not yet handed to the proposer
        sent = 0  # positions handed over so far
        committed = list(prompt)
        new: list[int] = []
        stats = GenerationStats()
        finish = "length"
        limit = max_new_tokens
        if target.max_positions:  # never run past the model's positions
            limit = min(limit, target.max_positions - len(prompt))
        start = time.perf_counter()
        if proposer is not None:
            proposer.start_request(request_id, np.asarray(prompt, dtype=np.int64))
        try:
            if layers is not None and len(prompt) > 1:  # states for every prompt position but the root
                t0 = time.perf_counter()
                unsent.append(target.forward_with_states(prompt[:-1], layers, logits_to_keep=1)[1])
                stats.verify_s += time.perf_counter() - t0
            while len(new) < limit:
                budget = min(k, limit - len(new) - 1)  # this step emits accepted + 1 tokens
                draft = Draft.empty()
                drafting = proposer is not None and budget > 0 and (controller is None or controller.wants_draft(request_id))
                if drafting:
                    t0 = time.perf_counter()
                    states = None
                    if unsent:
                        states = unsent[0] if len(unsent) == 1 else torch.cat(unsent)
                        unsent.clear()
                    request = ProposalRequest(
                        request_id, np.asarray(committed, dtype=np.int64), len(prompt), budget,
                        sampling=sampling, hidden_states=states, hidden_start=sent,
                    )
                    if states is not None:
                        sent += states.shape[0]
                    draft = proposer.propose(request)
                    draft_s = time.perf_counter() - t0
                    stats.draft_s += draft_s
                    draft = self._check_draft(draft, proposer)
                    draft = draft.truncated(budget)
                    if controller is not None:
                        controller.record_draft_time(len(draft), draft_s)
                if controller is not None and proposer is not None and budget > 0:
                    chain = _first_chain(draft)
                    sent = controller.choose([RowStep(request_id, np.asarray(committed, dtype=np.int64), chain)])[0]
                    draft = draft.truncated(sent)

                t0 = time.perf_counter()
                cached = target.cache_len
                pending = committed[cached:]  # [num_pending]: uncached committed tokens, ending with the root
                inputs = pending + draft.token_ids.tolist()
                parents = draft.parents if draft.is_tree else None
                if layers is None:
                    logits = target.forward(inputs, parents=parents, logits_to_keep=len(draft) + 1)  # [num_nodes + 1, V]
                else:
                    logits, states = target.forward_with_states(inputs, layers, parents=parents, logits_to_keep=len(draft) + 1)
                result = verifier.verify(logits, draft, sampling, generator)
                base = cached + len(pending)  # cache length through the root
                accepted = list(result.accepted_nodes)
                if accepted == list(range(len(accepted))):
                    target.rollback(base + len(accepted))
                else:  # a tree path off the first branch: gather its positions
                    target.keep(list(range(base)) + [base + n for n in accepted])
                verify_s = time.perf_counter() - t0
                stats.verify_s += verify_s
                if controller is not None and len(pending) == 1:  # decode steps only: a prefill is no point of the curve
                    controller.record_step_time(len(inputs), verify_s)

                emitted = list(result.tokens)[: limit - len(new)]
                hit_eos = next((j for j, t in enumerate(emitted) if t in self.eos_ids), None)
                if hit_eos is not None:
                    emitted = emitted[: hit_eos + 1]
                committed += emitted
                new += emitted
                if target.cache_len > len(committed) - 1:  # emitted was cut at EOS inside the accepted path
                    target.rollback(len(committed) - 1)
                stats.steps += 1
                stats.drafted += len(draft)
                kept = min(len(accepted), len(emitted))
                if layers is not None:  # the pending tokens' states, then the accepted nodes'
                    rows = list(range(len(pending))) + [len(pending) + n for n in accepted[:kept]]
                    unsent.append(states[rows])
                stats.accepted += kept
                stats.accept_lengths.append(kept)
                if drafting:  # observe follows every propose call
                    feedback = StepFeedback(request_id, draft, accepted[:kept], emitted)
                    if Need.target_predictions in needs:
                        feedback.target_predictions = logits.argmax(-1).cpu().numpy()
                    if Need.target_topk in needs:
                        topk = min(self.feedback_topk, logits.shape[-1])
                        feedback.target_topk = logits.topk(topk, dim=-1).indices.cpu().numpy()
                    if Need.target_probs in needs:
                        from specplug.verify.sampling import process_logits

                        feedback.target_probs = process_logits(logits, sampling).double().cpu().numpy()
                    proposer.observe(feedback)
                if hit_eos is not None:
                    finish = "eos"
                    break
        finally:
            if proposer is not None:
                proposer.finish_request(request_id)
            if controller is not None:
                controller.finish(request_id)
        stats.new_tokens = len(new)
        stats.wall_s = time.perf_counter() - start
        text = self.tokenizer.decode(new, skip_special_tokens=True) if self.tokenizer is not None else None
        return GenerationResult(token_ids=new, stats=stats, finish_reason=finish, text=text)


def _first_chain(draft: Draft) -> list[int]:
    """A chain's tokens, or a tree's first root-to-leaf chain (each node's lowest-index child)."""
    if not draft.is_tree or len(draft) == 0:
        return draft.token_ids.tolist()
    nodes = [0]
    while True:
        children = np.flatnonzero(draft.parents == nodes[-1])
        if children.size == 0:
            return draft.token_ids[nodes].tolist()
        nodes.append(int(children[0]))


def run_method(
    method_id: str | None,
    options: Mapping[str, Any] | None = None,
    model: Any = "smollm2-135m",
    prompts: Sequence[Sequence[int]] = (),
    k: int = 5,
    max_new_tokens: int = 64,
    sampling: SamplingParams | None = None,
    verifier: Verifier | str | None = None,
    tokenizer: Any = None,
    seed: int = 0,
    engine: ReferenceEngine | None = None,
    control: Mapping[str, Any] | None = None,
) -> list[GenerationResult]:
    """Build ``method_id``'s proposer from the registry (``None``: plain decoding) and decode ``prompts``.

    ``model`` is a loaded transformers model or a ``--model`` value (loaded with
    :func:`specplug.models.load_model`). Pass ``engine`` to reuse one across calls.
    """
    if engine is None:
        if isinstance(model, str):
            from specplug.models import load_model

            model, loaded_tokenizer = load_model(model)
            tokenizer = tokenizer or loaded_tokenizer
        engine = ReferenceEngine(model, tokenizer)
    proposer = None
    if method_id:
        from specplug.registry import get_registry

        spec = get_registry().method(method_id)
        if spec.max_k is not None and k > spec.max_k:
            raise ValueError(f"{spec.id!r} drafts at most {spec.max_k} tokens per step; got k={k}")
        proposer = spec.build(options)
    return engine.generate(prompts, proposer, verifier, k=k, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed, control=control)
