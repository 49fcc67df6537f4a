"""Level 1: any registered specplug method as a vLLM ``custom_class`` proposer (no patching).

vLLM (0.32) builds the drafter with ``Class(vllm_config)`` and calls, after every step::

    propose(sampled_token_ids,   # list[list[int]]: per row, tokens emitted this step (empty: skip row)
            num_tokens_no_spec,  # [max_num_seqs] int32: committed tokens per row, emitted ones included
            token_ids_cpu,       # [max_num_seqs, max_model_len] int32: every row's tokens
            slot_mappings=None) -> list[list[int]]   # per row, the draft (empty: none)

and ``load_model(target_model)`` once (on CPU without a hasattr check). It passes no request ids
and not the number of tokens to draft; K is ``speculative_config.num_speculative_tokens``.

:func:`adapter_class` makes one class per method spec. Everything is validated in ``__init__``,
that is when the engine starts: the options (``--additional-config '{"specplug": {"options":
{...}}}'``), K against the method's ``max_k``, and the method's needs against level 2.

Two paths per step. A proposer that implements :class:`~specplug.protocols.BatchProposer` gets one
``propose_batch`` call on vLLM's own token buffer, drafts written into a preallocated array; when it
is ``stateless`` the row tracking is skipped too. Every other proposer gets one ``propose`` per row.
Both give vLLM the same drafts (the batch contract is equivalence with ``propose``'s first chain).

Draft length control (:mod:`specplug.kit.k_control`): with ``additional_config["specplug"]["control"]``
(``{"mode": "adaptive"}``, ``{"mode": "schedule", "schedule": [[1, 4, 5], [5, 256, 0]]}`` or
``{"mode": "fixed"}``), or with vLLM's own ``num_speculative_tokens_per_batch_size`` in the
speculative config (which vLLM does not pass to a custom_class drafter, so the adapter applies it),
a :class:`~specplug.kit.k_control.KController` cuts each row's draft every step, to nothing when
speculation does not pay. The method still drafts its full ``num_speculative_tokens`` (model-free
drafters cost little), so acceptance is measured on every row, sent or not. How the adapter learns
the cost curve: it *measures* it, as the wall time between consecutive ``propose`` calls (one whole
engine step: schedule, forward, sampling, drafting) against the tokens that step's forward ran
(live rows plus the drafts sent the step before); steps where the set of live rows changed, or a
row grew by other than 1 to k + 1 tokens (a prefill ran, a new request took the row), are left out. Rows are the controller's keys; a row taken by a new request is detected
by its history (see :mod:`specplug.kit.k_control`).

Level 2 (``patches.py``) talks to the adapter through four public methods only: :meth:`bind_batch`
(the batch's real request ids and prompt lengths, before each step's ``propose``),
:meth:`finish_requests` (what vLLM finished or aborted), :meth:`is_live` and :meth:`observe` (the
target's feedback after verification).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import time

import numpy as np

from specplug.kit.k_control import ControlConfigError, KController, RowStep
from specplug.methods import MethodSpec, OptionsError
from specplug.protocols import BatchProposer, Draft, ProposalRequest, StepFeedback
from specplug.integrations.vllm import level2_state
from specplug.integrations.vllm.rows import BoundRequests, RowTracker

__all__ = ["SpecplugConfigError", "adapter_class", "first_chain", "options_from_config", "specplug_section"]

from specplug.integrations.vllm.level2_state import get_logger

logger = get_logger()

LEVEL2_ENV = "SPECPLUG_VLLM_LEVEL2"


class SpecplugConfigError(ValueError):
    """The speculative config cannot run the method as asked; the message says what to change."""


SECTION_KEYS = {
    "options": "the method's options (validated against its options model)",
    "verifier": "level 2: a registered verifier id that replaces vLLM's rejection sampler",
    "verifier_options": "level 2: the verifier's options",
    "topk": "level 2: how many target top-k ids methods that need target_topk get (default 8)",
    "control": 'the draft-length controller, e.g. {"mode": "adaptive"} (see specplug.kit.k_control.ControlConfig)',
}


def vllm_schedule(entries: Any) -> list[list[int]]:
    """vLLM's ``num_speculative_tokens_per_batch_size`` as the controller's schedule, read as vLLM
    reads it: a gap between ranges takes the ``k`` of the range before it."""
    ranges = sorted((int(a), int(b), int(k)) for a, b, k in entries)
    out: list[list[int]] = []
    for first, last, k in ranges:
        if out and first > out[-1][1] + 1:
            out[-1][1] = first - 1
        out.append([first, last, k])
    return out


def controller_from_config(vllm_config: Any, k: int) -> KController | None:
    """The adapter's controller: ``additional_config["specplug"]["control"]``, else vLLM's schedule, else none."""
    control = specplug_section(vllm_config).get("control")
    schedule = getattr(vllm_config.speculative_config, "num_speculative_tokens_per_batch_size", None)
    if control is None and schedule:
        control = {"mode": "schedule", "schedule": vllm_schedule(schedule)}
    if control is None:
        return None
    try:
        return KController(control, k)
    except ControlConfigError as err:
        raise SpecplugConfigError(f'additional_config["specplug"]["control"]: {err}') from None


def specplug_section(vllm_config: Any) -> dict[str, Any]:
    """``VllmConfig.additional_config["specplug"]``, checked for unknown keys (empty when absent)."""
    extra = getattr(vllm_config, "additional_config", None) or {}
    if not isinstance(extra, Mapping):
        return {}
    section = extra.get("specplug") or {}
    if not isinstance(section, Mapping):
        raise SpecplugConfigError(
            'additional_config["specplug"] must be a JSON object such as {"options": {"min_ngram": 2}}, '
            f"got {type(section).__name__}"
        )
    unknown = set(section) - set(SECTION_KEYS)
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in SECTION_KEYS.items())
        raise SpecplugConfigError(f'unknown keys in additional_config["specplug"]: {sorted(unknown)}. Known keys: {known}')
    return dict(section)


def options_from_config(vllm_config: Any) -> dict[str, Any]:
    """The method options from ``VllmConfig.additional_config["specplug"]["options"]``."""
    options = specplug_section(vllm_config).get("options") or {}
    if not isinstance(options, Mapping):
        raise SpecplugConfigError('additional_config["specplug"]["options"] must be a JSON object')
    return dict(options)


def first_chain(draft: Draft) -> np.ndarray:
    """The draft's first root-to-leaf chain: node 0, then each node's lowest-index child.

    vLLM verifies chains only. Example: parents ``[-1, 0, -1, 1]`` (root -> 0 -> 1 -> 3, root -> 2)
    gives nodes ``[0, 1, 3]``.
    """
    if not draft.is_tree or len(draft) == 0:
        return draft.token_ids
    parents = draft.parents
    nodes = [0]
    while True:
        children = np.flatnonzero(parents == nodes[-1])
        if children.size == 0:
            return draft.token_ids[nodes]
        nodes.append(int(children[0]))


class SpecplugProposerBase:
    """Drives one specplug :class:`~specplug.protocols.Proposer` from vLLM's custom_class calls."""

    spec: MethodSpec  # set by adapter_class

    def __init__(self, vllm_config: Any) -> None:
        spec = self.spec
        spec_config = vllm_config.speculative_config
        self.k = int(spec_config.num_speculative_tokens)
        if self.k < 1:
            raise SpecplugConfigError(f"num_speculative_tokens must be >= 1, got {self.k}")
        if spec.max_k is not None and self.k > spec.max_k:
            raise SpecplugConfigError(
                f"method {spec.id!r} drafts at most {spec.max_k} tokens per step but num_speculative_tokens "
                f"is {self.k}; set num_speculative_tokens <= {spec.max_k}"
            )
        missing = set(spec.needs) - level2_state.provided_needs()
        if missing:
            names = ", ".join(sorted(str(n) for n in missing))
            if not level2_state.active():
                raise SpecplugConfigError(
                    f"method {spec.id!r} needs {names} from the engine, which level 1 (custom_class) cannot "
                    f"give. Enable specplug's vLLM level 2 plugin: set {LEVEL2_ENV}=1 in the environment of "
                    f"the vLLM process (and do not exclude 'specplug' in VLLM_PLUGINS)."
                )
            raise SpecplugConfigError(
                f"method {spec.id!r} needs {names}, which specplug's vLLM level 2 does not provide yet "
                f"(it provides: {', '.join(sorted(level2_state.provided_needs())) or 'nothing'})"
            )
        if specplug_section(vllm_config).get("verifier") and not level2_state.active():
            raise SpecplugConfigError(
                f'additional_config["specplug"]["verifier"] replaces vLLM\'s rejection sampler, which needs level 2: '
                f"set {LEVEL2_ENV}=1 in the environment of the vLLM process"
            )
        try:
            self.options = spec.validate_options(options_from_config(vllm_config))
        except OptionsError as err:
            raise OptionsError(
                f"{err} Pass options as --additional-config '{{\"specplug\": {{\"options\": {{...}}}}}}'."
            ) from None
        self.proposer = spec.factory(self.options)
        self.max_model_len = int(vllm_config.model_config.max_model_len)
        vocab = getattr(vllm_config.model_config, "get_vocab_size", None)
        self.vocab_size = int(vocab()) if callable(vocab) else None
        self.tracker = RowTracker()
        # The batched path (one propose_batch per step) when the proposer offers it.
        self.batched = isinstance(self.proposer, BatchProposer)
        self._out = np.full((0, self.k), Draft.PADDING, dtype=np.int32)  # [rows, k] drafts of the batched path
        self._cols = np.arange(self.k, dtype=np.int32)  # [k]
        path = "one propose_batch per step" if self.batched else "one propose per row"
        if self.batched and self.proposer.stateless:
            path += ", no row tracking (stateless)"
        logger.info("specplug method %r drafts for vLLM with %s", spec.id, path)
        self._bound = BoundRequests()  # level 2: real request ids
        #: level 2's opt-in state trace (``SPECPLUG_VLLM_TRACE``), else None
        self.trace = level2_state.make_trace(spec.id) if level2_state.active() else None
        self._warned = False
        #: the draft-length controller, or None (every row gets the method's whole draft)
        self.controller = controller_from_config(vllm_config, self.k)
        # (time, tokens in the next forward, live rows, their lengths, their k): what the next step's time is a sample of
        self._last_step: tuple | None = None
        if self.controller is not None:
            logger.info("specplug method %r: draft length chosen per step by the controller (%s)", spec.id, self.controller.config.mode)
        level2_state.register_drafter(self)

    def load_model(self, *args: Any, **kwargs: Any) -> None:
        # No model to load: specplug proposers run on token ids.
        return None

    # -- lifecycle ------------------------------------------------------------------------------
    def _safe(self, what: str, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except Exception as exc:  # a broken proposer must not kill the engine
            self._warn(what, exc)
            return False

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "specplug method %r raised in %s (%s: %s); that row gets no draft. "
                "Further errors of this method are not logged.",
                self.spec.id, what, type(exc).__name__, exc,
            )

    # -- level 2: real request ids, handed over by the patched model runner ------------------------
    def bind_batch(self, request_ids: Sequence[str | None], num_prompt_tokens: np.ndarray) -> None:
        """The batch's request ids and ``[max_num_seqs]`` prompt lengths by row (vLLM's own arrays),
        before this step's ``propose``. From the first call on, requests start on the proposer when
        first seen by id, and finish through :meth:`finish_requests`, instead of being guessed by row."""
        self._bound.bind(request_ids, num_prompt_tokens)

    def finish_requests(self, request_ids: Iterable[str]) -> list[str]:
        """Once per engine step: vLLM finished or aborted ``request_ids`` (ids this drafter never
        started are ignored). Each live one is finished on the proposer, once; returns those.

        With the state trace on, the step is counted and, when requests ended, the proposer's state
        is recorded after they were finished."""
        ended = self._bound.finish(request_ids)
        for request_id in ended:
            self._safe("finish_request", self.proposer.finish_request, request_id)
        if self.trace is not None:
            self.trace.step += 1
            self.trace.ended.update(ended)
            if ended:
                self.trace.state(self.proposer, len(self._bound.live))
        return ended

    def is_live(self, request_id: str | None) -> bool:
        """Whether the proposer has started ``request_id`` and not finished it (level 2)."""
        return request_id in self._bound.live

    def observe(self, feedback: StepFeedback) -> None:
        """Hand the proposer its live request's feedback after verification (level 2; a proposer
        that raises loses this feedback and is warned about once, the engine goes on)."""
        if self.is_live(feedback.request_id):
            self._safe("observe", self.proposer.observe, feedback)

    # -- the step -------------------------------------------------------------------------------
    def propose(
        self,
        sampled_token_ids: list[list[int]],
        num_tokens_no_spec: np.ndarray,  # [max_num_seqs]
        token_ids_cpu: np.ndarray,  # [max_num_seqs, max_model_len]
        slot_mappings: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[list[int]]:
        if self.controller is None:
            return self._propose(sampled_token_ids, num_tokens_no_spec, token_ids_cpu)
        start = time.perf_counter()
        drafts = self._propose(sampled_token_ids, num_tokens_no_spec, token_ids_cpu)
        return self._control(start, time.perf_counter() - start, drafts, sampled_token_ids, num_tokens_no_spec, token_ids_cpu)

    def _control(self, start: float, draft_s: float, drafts: list[list[int]], sampled, num_tokens, token_ids) -> list[list[int]]:
        """Cut every live row's draft to the controller's choice; feed it this step's time (and the
        drafter's, which its log keeps beside its own: what the adapter adds to a step)."""
        rows = tuple(i for i, s in enumerate(sampled) if s)
        controller = self.controller
        last = self._last_step
        if last is not None and last[2] == rows:
            # a decode step of the same rows: each grew by 1 to k + 1 tokens (not a new request, not a prefill)
            grown = np.asarray([int(num_tokens[r]) for r in rows]) - last[3]
            if np.all(grown >= 1) and np.all(grown <= last[4] + 1):
                controller.record_step_time(last[1], start - last[0])
        if not rows:
            self._last_step = None
            return drafts
        try:
            ks = controller.choose([RowStep(row, token_ids[row, : int(num_tokens[row])], drafts[row]) for row in rows], draft_seconds=draft_s)
        except Exception as exc:  # a broken controller must not kill the engine: no drafts this step
            self._warn("the draft-length controller", exc)
            ks = [0] * len(rows)
        for row, k in zip(rows, ks):
            if k < len(drafts[row]):
                drafts[row] = drafts[row][:k]
        self._last_step = (start, len(rows) + sum(ks), rows, np.asarray([int(num_tokens[r]) for r in rows]), np.asarray(ks))
        return drafts

    def _propose(self, sampled_token_ids, num_tokens_no_spec, token_ids_cpu) -> list[list[int]]:
        if self.batched:
            return self._propose_batched(sampled_token_ids, num_tokens_no_spec, token_ids_cpu)
        batch = len(sampled_token_ids)
        drafts: list[list[int]] = [[] for _ in range(batch)]
        rows = [i for i, s in enumerate(sampled_token_ids) if s]
        if not rows:
            return drafts
        ids = self._request_ids(rows, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, batch)
        vocab = self.vocab_size if self.vocab_size is not None else np.iinfo(np.int32).max
        for row in rows:
            n = int(num_tokens_no_spec[row])
            budget = min(self.k, self.max_model_len - n - 1)
            if budget <= 0:
                continue
            request_id, num_prompt = ids[row]
            request = ProposalRequest(
                request_id=request_id,
                token_ids=token_ids_cpu[row, :n],  # a view, no copy
                num_prompt_tokens=num_prompt,
                max_tokens=budget,
            )
            try:
                draft = self.proposer.propose(request)
                tokens = first_chain(draft)[:budget].tolist()
                # plain Python on <= K ints: cheaper than numpy's min/max on tiny arrays
                if tokens and (min(tokens) < 0 or max(tokens) >= vocab):
                    kept = len(Draft.chain(tokens).without_invalid(vocab))
                    if tokens[kept] != Draft.PADDING:  # padding: no draft from there on; other ids: a bug
                        raise ValueError(f"draft token ids outside the vocabulary [0, {vocab})")
                    tokens = tokens[:kept]
            except Exception as exc:
                self._warn("propose", exc)
                continue
            drafts[row] = tokens
        return drafts

    def _propose_batched(self, sampled_token_ids, num_tokens_no_spec, token_ids_cpu) -> list[list[int]]:
        """One ``propose_batch`` call for every row; row tracking only for stateful proposers.

        Kept to a handful of numpy calls on ``[batch]`` arrays: at batch 32 the whole step must cost
        about what vLLM's own ngram kernel does (see the ``ngram_family`` suite kind, ``specplug.bench.kinds.ngram_family``).
        """
        batch = len(sampled_token_ids)
        live = [bool(s) for s in sampled_token_ids]
        if not any(live):
            return [[] for _ in range(batch)]
        lengths = num_tokens_no_spec[:batch]  # [batch]
        max_tokens = np.minimum(self.k, self.max_model_len - 1 - lengths)  # [batch], <= 0: no draft
        if not all(live):
            max_tokens[~np.array(live)] = 0
        if self._out.shape[0] < batch:
            self._out = np.full((max(batch, 2 * self._out.shape[0]), self.k), -1, dtype=np.int32)
        out = self._out[:batch]  # [batch, k]
        out.fill(Draft.PADDING)
        request_ids = num_prompt = None
        if not self.proposer.stateless:
            rows = [i for i, alive in enumerate(live) if alive]
            if self._bound.bound:  # level 2: real ids
                ids = self._request_ids(rows, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, batch)
                request_ids = [None] * batch
                num_prompt = np.zeros(batch, dtype=np.int64)
                for row, (request_id, prompt_len) in ids.items():
                    request_ids[row] = request_id
                    num_prompt[row] = prompt_len
            else:
                request_ids, num_prompt, started, finished = self.tracker.lookup(
                    rows, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, batch
                )
                for track in finished:
                    self._safe("finish_request", self.proposer.finish_request, track.request_id)
                for row, track in started:
                    prompt = token_ids_cpu[row, : track.num_prompt_tokens]
                    self._safe("start_request", self.proposer.start_request, track.request_id, prompt)
        try:
            counts = self.proposer.propose_batch(token_ids_cpu[:batch], lengths, max_tokens, out, request_ids, num_prompt)
            # Cells past a row's count stay -1, so one count and one max check every draft token at once.
            if (self.vocab_size is not None and out.max() >= self.vocab_size) or np.count_nonzero(out >= 0) != counts.sum():
                counts = self._drop_bad_rows(out, counts)
        except Exception as exc:  # a broken proposer must not kill the engine
            self._warn("propose_batch", exc)
            return [[] for _ in range(batch)]
        return [row[:n] for row, n in zip(out.tolist(), counts.tolist())]

    def _drop_bad_rows(self, out: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Counts with 0 for every row whose draft has an id outside the vocabulary (warned once)."""
        counts = np.asarray(counts).copy()
        inside = self._cols < counts[:, None]  # [batch, k]: cells that should hold draft tokens
        high = self.vocab_size if self.vocab_size is not None else np.iinfo(np.int32).max
        bad = (((out < 0) | (out >= high)) & inside).any(axis=1) | (((out >= 0) & ~inside).any(axis=1))
        counts[bad] = 0
        self._warn("propose_batch", ValueError(f"draft token ids outside the vocabulary [0, {high}) or past the row's count"))
        return counts

    def _request_ids(self, rows, sampled, num_tokens, token_ids, batch) -> dict[int, tuple[str, int]]:
        """``row -> (request id, prompt length)``; starts and finishes requests on the proposer."""
        if self._bound.bound:  # level 2: real ids; vLLM reports the finishes (finish_requests)
            ids, started = self._bound.lookup(rows)
            for row in started:
                request_id, num_prompt = ids[row]
                if self.trace is not None:
                    self.trace.started += 1
                self._safe("start_request", self.proposer.start_request, request_id, token_ids[row, :num_prompt])
            return ids
        tracks, started, finished = self.tracker.update(rows, [len(sampled[r]) for r in rows], num_tokens, token_ids, batch)
        for track in finished:
            self._safe("finish_request", self.proposer.finish_request, track.request_id)
        for row, track in tracks.items():
            if any(track is s for s in started):
                prompt = token_ids[row, : track.num_prompt_tokens]
                self._safe("start_request", self.proposer.start_request, track.request_id, prompt)
        return {row: (t.request_id, t.num_prompt_tokens) for row, t in tracks.items()}


_classes: dict[tuple[str, int], type[SpecplugProposerBase]] = {}


def adapter_class(spec: MethodSpec) -> type[SpecplugProposerBase]:
    """The custom_class proposer for one method (one class per spec object, cached)."""
    key = (spec.id, id(spec))
    if key not in _classes:
        name = "".join(part.capitalize() for part in spec.id.split("_")) + "VllmProposer"
        doc = f"specplug method {spec.id!r} as a vLLM custom_class proposer."
        _classes[key] = type(name, (SpecplugProposerBase,), {"spec": spec, "__doc__": doc, "__module__": "specplug.vllm"})
    return _classes[key]
