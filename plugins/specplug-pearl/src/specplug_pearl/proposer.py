"""PEARL: parallel speculative decoding with adaptive draft length (Liu et al., arXiv 2408.11850).

Ordinary speculative decoding alternates: the draft model drafts ``gamma`` tokens while the target
waits, then the target verifies them while the draft waits (the paper's "mutual waiting"). PEARL
runs the two at the same time, with two strategies chosen by the last verification's outcome:

- **pre-verify** (at the start and after a rejection): while the draft model drafts ``gamma``
  tokens from the committed text, the target runs on the committed text alone, which gives its own
  next token and so verifies the *first* draft token in advance. If they differ, the draft is
  stopped at once (the rest of the window would be thrown away); if they agree, the target's token
  is committed and the other ``gamma - 1`` draft tokens go on to post-verify.
- **post-verify** (while draft tokens wait for verification): the target verifies them while the
  draft model keeps drafting ``gamma`` more past them, as if they will all be accepted. If they
  all are and the target's bonus token equals the first new one, the rest are ready for the next
  verification (no drafting wait) and decoding stays in post-verify; otherwise they are dropped and
  decoding switches to pre-verify.

The draft length so adapts with no rule of its own: one token where the draft is wrong at once,
window after window where it keeps being right.

How it runs in specplug's reference engine (the engine-free :class:`~specplug.protocols.Proposer`
contract, no engine change): the drafting job runs in a worker thread of this proposer, and the
engine's own target forward is the target job.

- A pre-verify step is a ``propose`` that returns an *empty* draft (the engine then runs the target
  on the committed text alone: the target job) after starting the drafting job from the committed
  text; ``observe`` hands over the target's token and stops the job as soon as its first token is
  known to differ (the early stop). The next ``propose`` keeps the job's other tokens if its first
  one equals the committed token.
- A post-verify step is a ``propose`` that returns the pending tokens after starting the drafting
  job past them; ``observe`` stops the job when not all of them were accepted.

``parallel=False`` runs each drafting job to the end inside ``propose`` instead (same drafts, same
output, no overlap), which is what the algorithm costs with a single compute stream. On a machine
where draft and target share the CPU cores, the overlap is real only when cores are free for both
(torch releases the GIL inside its kernels; use one torch thread each).

Lossless at temperature 0 (the target decides every committed token). The paper's sampling variant
is not implemented: at temperature > 0 the proposer refuses to run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback, TargetInfo

__all__ = ["PearlOptions", "PearlProposer"]


class PearlOptions(MethodOptions):
    """Options of ``pearl``. The draft is ``model`` (a folder) or ``layers`` of the target."""

    model: str | None = Field(None, description="The draft model folder (e.g. from 'specplug models derive smollm2-135m --layers 0-3').")
    layers: str | None = Field(None, description="Draft with these decoder layers of the target itself (e.g. '0-3'), sharing its weights.")
    gamma: int = Field(4, ge=1, le=64, description="The window: draft tokens per drafting job (the paper: about the target/draft time ratio).")
    parallel: bool = Field(True, description="Draft in a worker thread beside the engine's target forward (False: draft inside propose).")

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _one_source(self) -> PearlOptions:
        if (self.model is None) == (self.layers is None):
            raise ValueError("give exactly one of 'model' (a draft folder, e.g. from 'specplug models derive smollm2-135m "
                             "--layers 0-3') or 'layers' (e.g. '0-3': draft with those layers of the target)")
        return self


@dataclass
class _Job:
    """One drafting job: the tokens it drafts from (``base``) and what it drafted."""

    base: list[int]
    future: Future | None = None
    tokens: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    first_target: int | None = None  # pre-verify: the target's token at the job's first position, once known
    pre: bool = True
    target_s: float = 0.0
    draft_s: float = 0.0  # the job's drafting time
    proposed_at: float = 0.0  # when propose handed the step to the engine (its target job starts)


@dataclass
class PearlCounts:
    """What the strategies did (summed over requests)."""

    pre_phases: int = 0
    pre_rejected: int = 0  # pre-verify phases whose first draft token the target rejected
    pre_drafted: int = 0  # draft tokens made in pre-verify phases (the early stop keeps this low)
    post_phases: int = 0
    post_chained: int = 0  # post-verify phases whose continuation was kept
    draft_s: float = 0.0  # time in drafting jobs
    waited_s: float = 0.0  # time propose waited for a job (drafting the engine did not hide)
    target_s: float = 0.0  # the engine's target jobs (from propose's return to observe)
    hideable_s: float = 0.0  # sum over phases of min(drafting job, target job): what two devices would hide


class PearlProposer(BaseProposer):
    """Greedy PEARL's drafter; the engine's target forward is its target job (see the module docstring)."""

    def __init__(self, options: PearlOptions) -> None:
        self.options = options
        self.needs = frozenset({Need.target_model}) if options.layers is not None else frozenset()
        self.counts = PearlCounts()
        self._draft_model: Any = None
        self._bound_to: Any = None
        self._caches: dict[str, Any] = {}
        self._jobs: dict[str, _Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pearl-draft") if options.parallel else None

    # -- binding -----------------------------------------------------------------------------------
    def bind_target(self, target: TargetInfo) -> None:
        key = (id(target.model), target.vocab_size)
        if key == self._bound_to:
            return
        from specplug.kit.draft_models import bind_draft_model

        model, _ = bind_draft_model(target, method="pearl", layers=self.options.layers, model=self.options.model)
        self._draft_model = model
        self._caches.clear()
        self._bound_to = key

    # -- lifecycle ---------------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        from specplug.kit.drafting import DraftCache

        if self._draft_model is None:
            raise RuntimeError("pearl is not bound to a target: the engine calls bind_target before the first request")
        self._caches[request_id] = DraftCache(self._draft_model)

    def finish_request(self, request_id: str) -> None:
        job = self._jobs.pop(request_id, None)
        if job is not None and job.future is not None:
            job.stop.set()
            job.future.result()
        self._caches.pop(request_id, None)

    # -- the drafting job ----------------------------------------------------------------------------
    def _draft(self, request_id: str, base: list[int], job: _Job) -> None:
        """Up to ``gamma`` greedy draft tokens after ``base`` into ``job.tokens``; stops when
        ``job.stop`` is set, and in pre-verify after the first token when the target's token is
        known and differs."""
        import torch

        start = time.perf_counter()
        cache = self._caches[request_id]
        with torch.no_grad():
            logits = cache.sync(base)
            for i in range(self.options.gamma):
                token = int(logits.argmax())
                job.tokens.append(token)
                if i == 0 and job.pre and job.first_target is not None and job.first_target != token:
                    break
                if job.stop.is_set() or i + 1 == self.options.gamma:
                    break
                logits = cache.feed([token])
        job.draft_s = time.perf_counter() - start
        self.counts.draft_s += job.draft_s

    def _start(self, request_id: str, base: list[int], pre: bool) -> None:
        job = _Job(base=base, pre=pre)
        self._jobs[request_id] = job
        if self._pool is not None:
            job.future = self._pool.submit(self._draft, request_id, base, job)
        # sequential: the job is drafted in observe, once the target's token is known

    def _collect(self, request_id: str) -> _Job | None:
        job = self._jobs.pop(request_id, None)
        if job is None:
            return None
        if job.future is not None:
            t0 = time.perf_counter()
            job.future.result()
            self.counts.waited_s += time.perf_counter() - t0
        self.counts.hideable_s += min(job.draft_s, job.target_s)
        return job

    # -- the contract --------------------------------------------------------------------------------
    def propose(self, request: ProposalRequest) -> Draft:
        if request.sampling is not None and not request.sampling.greedy:
            raise ValueError("pearl is implemented for greedy decoding (temperature 0) only; the paper's sampling variant is not")
        committed = request.token_ids.tolist()
        job = self._collect(request.request_id)
        ready: list[int] = []
        if job is not None and job.pre:
            self.counts.pre_phases += 1
            self.counts.pre_drafted += len(job.tokens)
            agreed = len(committed) > len(job.base) and job.tokens[:1] == [committed[len(job.base)]]
            self.counts.pre_rejected += int(not agreed)
        if job is not None and len(committed) > len(job.base):
            new = committed[len(job.base) :]
            # the job drafted past its base; keep what follows the committed text, if the committed text agrees with it
            if len(job.tokens) > len(new) and job.tokens[: len(new)] == new:
                ready = job.tokens[len(new) :]
                self.counts.post_chained += int(not job.pre)
        if ready:
            ready = ready[: request.max_tokens]
            self.counts.post_phases += 1  # (started; pre_phases are counted when collected)
            self._start(request.request_id, committed + ready, pre=False)  # post-verify: draft past the pending tokens
            self._jobs[request.request_id].proposed_at = time.perf_counter()
            return Draft.chain(ready)
        self._start(request.request_id, committed, pre=True)  # pre-verify: the engine's forward is the target job
        self._jobs[request.request_id].proposed_at = time.perf_counter()
        return Draft.empty()

    def observe(self, feedback: StepFeedback) -> None:
        job = self._jobs.get(feedback.request_id)
        if job is None:
            return
        job.target_s = time.perf_counter() - job.proposed_at
        self.counts.target_s += job.target_s
        if job.pre:
            job.first_target = feedback.emitted[0]
            if job.tokens and job.tokens[0] != job.first_target:
                job.stop.set()
            if job.future is None:  # sequential: draft now, stopping after the first token if the target disagrees
                self._draft(feedback.request_id, job.base, job)
        else:
            if len(feedback.accepted_nodes) < len(feedback.draft):
                job.stop.set()  # not all accepted: the continuation is useless
            elif job.future is None:  # sequential: draft the continuation now
                self._draft(feedback.request_id, job.base, job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
