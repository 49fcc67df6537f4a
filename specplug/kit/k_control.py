"""How many tokens to draft per step, per request: speculation that never costs throughput.

Every method drafts up to ``k`` tokens; whether verifying them pays depends on what this engine's
target forward costs for one more token at the current batch size, and on how likely each draft
position is to be accepted. :class:`KController` decides, per step and per request, how many of the
drafted tokens to send to the target, ``0`` (no speculation) included, from what it has measured:

- **acceptance** per draft position, over all requests and per request (:class:`AcceptanceModel`):
  the conditional rate ``a_j`` (position ``j`` accepted, given ``1..j-1`` were), so the marginal
  chance that draft token ``j`` is emitted is ``P_j = a_1 ... a_j``. Measured *by shadow*: the
  controller keeps the whole draft the method proposed (not just the part it sent) and compares it
  with the tokens the request actually committed afterwards. Under greedy decoding a draft token is
  accepted exactly when it equals the committed token, so positions that were not sent (``k = 0``
  included) are measured too, and a request whose acceptance rises gets its speculation back.
- **the verify cost curve** ``c(T) = a + b T`` of the engine (seconds per step with ``T`` tokens
  in the forward, all rows together), fitted by weighted least squares over per-``T`` averages of
  the step times the host reports (:class:`CostModel`), plus the drafter's time per drafted token.

The decision (:meth:`KController.choose`): start from plain decoding (every row emits 1 token per
step at cost ``c(B)``), then add draft tokens in decreasing order of ``P_j`` while the expected
throughput ``E / c(T)`` rises (``E`` = expected tokens); keep the plan only when its expected
throughput beats plain's by ``margin``. This is the exact optimum of the expected tokens per second
for a linear cost curve, because a row's ``P_j`` never increases with ``j``.

Measuring the curve costs steps, and at a large batch a careless measurement costs more than
speculation could ever win back (26 rows at ``k = 5`` is six times the tokens of a plain step). So
every measuring step sends at most ``max(k_max, explore_fraction * batch)`` draft tokens, the
likeliest ones: the warm-up (``k`` cycling from ``k_max`` to 0), and the *probe* of a batch size
whose token counts were never measured (a plain step and then one with the exploration budget, until
both sides of ``c`` around the batch are seen). The curve measured at batch 1 is never extrapolated
to 26 rows: on a CPU it is flat at batch 1 (the forward reads the weights) and linear at 26 (it
computes), so a slope learned at batch 1 would make every token look free.

Two simpler modes share the interface: ``fixed`` (always ``k``) and ``schedule`` (``k`` by batch
size, vLLM's ``num_speculative_tokens_per_batch_size`` format: inclusive ranges ``(first, last,
k)``, contiguous from batch 1; sizes past the last range take its ``k``).

Every decision is logged (:attr:`KController.log`, and a JSON-lines file with ``log_path``): per
step the batch size, the chosen ``k`` per row, why (``warmup``, ``probe``, ``plan``, ``fixed``,
``schedule``), the expected accepted tokens, the realised ones (known one step later, when the
committed tokens are seen), and the cost split the host reports: the step's wall time and tokens,
the drafter's time and the controller's own.

Engine-free (numpy only). Hosts: the reference engine (one request at a time) and specplug's vLLM
``custom_class`` adapter (the whole batch; rows are the keys, a row reused by a new request is
detected by its length shrinking or its history changing).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["AcceptanceModel", "ControlConfig", "ControlConfigError", "CostModel", "KController", "RowStep", "parse_control", "schedule_lookup"]


class ControlConfigError(ValueError):
    """The controller's configuration is invalid; the message names the key and the fix."""


Schedule = list[tuple[int, int, int]]


def validate_schedule(schedule: Any) -> Schedule:
    """``[(first, last, k), ...]`` checked: sorted, contiguous from batch size 1, no gaps or overlaps."""
    if not isinstance(schedule, (list, tuple)) or not schedule:
        raise ControlConfigError("schedule must be a non-empty list of [first_batch_size, last_batch_size, k] ranges, e.g. [[1, 4, 5], [5, 256, 0]]")
    ranges: Schedule = []
    for entry in schedule:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ControlConfigError(f"schedule entry {entry!r} must be [first_batch_size, last_batch_size, k]")
        first, last, k = (int(v) for v in entry)
        if first < 1 or last < first:
            raise ControlConfigError(f"schedule range {entry!r}: need 1 <= first <= last")
        if k < 0:
            raise ControlConfigError(f"schedule range {entry!r}: k must be >= 0")
        ranges.append((first, last, k))
    ranges.sort()
    if ranges[0][0] != 1:
        raise ControlConfigError(f"schedule starts at batch size {ranges[0][0]}: the first range must start at 1 so every batch size has a k")
    for (f0, l0, _), (f1, l1, _) in zip(ranges, ranges[1:]):
        if f1 <= l0:
            raise ControlConfigError(f"schedule ranges {f0}-{l0} and {f1}-{l1} overlap: each batch size must fall in exactly one range")
        if f1 > l0 + 1:
            raise ControlConfigError(f"schedule has a gap: batch sizes {l0 + 1}-{f1 - 1} fall in no range; make the ranges contiguous")
    return ranges


def schedule_lookup(schedule: Schedule, batch: int) -> int:
    """``k`` for ``batch`` rows (past the last range: its ``k``, as vLLM does)."""
    for first, last, k in schedule:
        if first <= batch <= last:
            return k
    return schedule[-1][2]


class ControlConfig(BaseModel):
    """How the controller decides (``additional_config["specplug"]["control"]`` in vLLM, ``control=`` in the reference engine)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["fixed", "schedule", "adaptive"] = Field("adaptive", description="fixed: always k; schedule: k by batch size; adaptive: the cost model")
    schedule: Any = Field(None, description="mode 'schedule': [[first, last, k], ...] inclusive batch-size ranges, contiguous from 1")
    prior_acceptance: float = Field(0.5, description="per-position acceptance assumed before any measurement, in [0, 1]")
    min_acceptance: float = Field(0.0, description="never send a draft token whose chance of being emitted is below this, in [0, 1]")
    margin: float = Field(0.02, ge=0.0, description="speculate only when the expected throughput beats plain decoding's by this fraction")
    prior_strength: float = Field(4.0, gt=0.0, description="pseudo-observations that pull a request's acceptance towards the global one")
    decay: float = Field(0.998, gt=0.0, le=1.0, description="forgetting factor of the global acceptance counts per observation")
    warmup_steps: int = Field(12, ge=2, description="steps that measure (k cycling from its most down to 0, at most the exploration budget of extra tokens) before the cost model decides")
    explore_fraction: float = Field(0.25, gt=0.0, description="while measuring the cost curve (the warm-up, and a batch size whose token counts it has not measured yet) a step sends at most max(k, this fraction of the batch) draft tokens, the likeliest ones: exploring at a large batch costs a bounded share of a step")
    probe_every: int = Field(4, ge=1, description="hosts that skip drafting when k is 0 still draft every this many steps to keep measuring acceptance")
    log_path: str | None = Field(None, description="append each step's decision as a JSON line to this file")

    @field_validator("prior_acceptance", "min_acceptance")
    @classmethod
    def _unit(cls, value: float, info) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{info.field_name} must lie in [0, 1], got {value}")
        return value

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value):
        return None if value is None else validate_schedule(value)


def parse_control(control: ControlConfig | dict | None) -> ControlConfig | None:
    """A :class:`ControlConfig` from a mapping (or ``None``), with one clear error on bad input."""
    if control is None or isinstance(control, ControlConfig):
        config = control
    else:
        if not isinstance(control, dict):
            raise ControlConfigError(f"control must be a JSON object such as {{\"mode\": \"adaptive\"}}, got {type(control).__name__}")
        try:
            config = ControlConfig(**control)
        except ControlConfigError:
            raise
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'control'}: {e['msg']}" for e in err.errors())
            raise ControlConfigError(f"bad controller configuration ({problems}). Known keys: {', '.join(ControlConfig.model_fields)}") from None
    if config is not None and config.mode == "schedule" and not config.schedule:
        raise ControlConfigError('mode "schedule" needs a schedule, e.g. {"mode": "schedule", "schedule": [[1, 4, 5], [5, 256, 0]]}')
    return config


class CostModel:
    """Seconds per step as a linear function of the tokens in the step's forward, ``c(T) = a + b T``.

    Step times are averaged per ``T`` (an exponential average, so a slow outlier fades) and the line
    is fitted over those averages, each weighted by its number of samples (capped so one ``T`` seen
    a thousand times does not drown the others). ``b`` is kept >= 0 and ``a`` >= 0.
    """

    def __init__(self) -> None:
        self._mean: dict[int, float] = {}
        self._count: dict[int, int] = {}
        self.draft_s_per_token = 0.0
        self._draft = [0.0, 0]
        self._ab = (0.0, 0.0)
        self._stale = False  # the line is refitted when next read, not at every step (the host's step is the budget)
        self.samples = 0

    @property
    def a(self) -> float:
        return self._fitted()[0]

    @property
    def b(self) -> float:
        return self._fitted()[1]

    def _fitted(self) -> tuple[float, float]:
        if self._stale:
            self._stale = False
            self._fit()
        return self._ab

    def add_step(self, tokens: int, seconds: float) -> None:
        if tokens < 1 or not math.isfinite(seconds) or seconds <= 0:
            return
        n = self._count.get(tokens, 0)
        mean = self._mean.get(tokens, seconds)
        self._mean[tokens] = mean + (seconds - mean) / min(n + 1, 8)
        self._count[tokens] = n + 1
        self.samples += 1
        self._stale = True

    def add_draft(self, drafted: int, seconds: float) -> None:
        """The drafter's time for ``drafted`` tokens (its cost per token enters the decision)."""
        if drafted > 0 and seconds >= 0:
            self._draft[0] += seconds
            self._draft[1] += drafted
            self.draft_s_per_token = self._draft[0] / self._draft[1]

    @property
    def ready(self) -> bool:
        return len(self._mean) >= 2

    def _fit(self) -> None:
        if not self.ready:
            self._ab = (next(iter(self._mean.values())), 0.0)
            return
        self._ab = self._line(None)

    def _line(self, around: float | None) -> tuple[float, float]:
        """Weighted least squares over the per-``T`` means; with ``around``, each point also weighted by
        a kernel in ``log T`` (a factor 2 away weighs ``e^-0.5``), so the line is the curve's local slope
        there: a CPU's step time is flat in ``T`` at batch 1 and linear at batch 26, and one global line
        would price tokens at batch 26 with the slope of batch 1."""
        t = np.fromiter(self._mean, dtype=np.float64)
        y = np.fromiter(self._mean.values(), dtype=np.float64)
        w = np.minimum(np.fromiter(self._count.values(), dtype=np.float64), 32.0)
        if around is not None:
            w = w * np.exp(-0.5 * (np.log(t / around) / np.log(2.0)) ** 2)
            if w.sum() <= 0 or np.count_nonzero(w > 1e-3 * w.max()) < 2:
                return self._fitted()
        tm, ym = np.average(t, weights=w), np.average(y, weights=w)
        var = np.average((t - tm) ** 2, weights=w)
        b = np.average((t - tm) * (y - ym), weights=w) / var if var > 0 else 0.0
        b = max(float(b), 0.0)
        return max(float(ym - b * tm), 0.0), b

    def knows(self, batch: int, spread: int) -> bool:
        """Whether the curve is measured around ``batch`` rows: at least two steps at some ``T`` in
        ``[batch / 2, batch]`` (plain decoding's side) and at some ``T`` in ``(batch, batch + spread]``
        (the side speculation adds), so the local slope is a measured one, not one extrapolated from
        other batch sizes (a CPU's curve is flat at batch 1 and steep at batch 26)."""
        low = self.measured(batch / 2, batch) >= 2
        high = self.measured(batch + 0.5, batch + spread) >= 2
        return low and high

    def measured(self, low: float, high: float) -> int:
        """Steps measured with ``low <= T <= high`` tokens."""
        return sum(n for t, n in self._count.items() if low <= t <= high)

    def local(self, tokens: float) -> CostModel:
        """A copy of this model whose line is fitted around ``tokens`` (see :meth:`_line`)."""
        out = CostModel.__new__(CostModel)
        out.__dict__.update(self.__dict__)
        out._ab, out._stale = (self._line(float(tokens)) if self.ready else self._fitted()), False
        return out

    def cost(self, tokens: float, drafted: float = 0.0) -> float:
        return self.a + self.b * tokens + self.draft_s_per_token * drafted


@dataclass
class _Counts:
    reached: np.ndarray
    accepted: np.ndarray


class AcceptanceModel:
    """Per-position acceptance: global (decayed) counts and per-key counts shrunk towards them."""

    def __init__(self, k_max: int, prior: float, strength: float, decay: float) -> None:
        self.k_max = k_max
        self.prior = prior
        self.strength = strength
        self.decay = decay
        self.global_ = _Counts(np.zeros(k_max), np.zeros(k_max))
        self.per_key: dict[Hashable, _Counts] = {}
        self._base: np.ndarray | None = None

    def record(self, key: Hashable, matched: int, observed: int) -> None:
        """A draft whose first ``matched`` tokens were accepted, of ``observed`` positions decided:
        positions ``1..matched`` reached and accepted, position ``matched + 1`` (if decided) rejected."""
        reached = min(observed, self.k_max)
        if reached <= 0:
            return
        acc = min(matched, reached)
        own = self.per_key.get(key)
        if own is None:
            own = self.per_key[key] = _Counts(np.zeros(self.k_max), np.zeros(self.k_max))
        self._base = None
        g = self.global_
        g.reached *= self.decay
        g.accepted *= self.decay
        for counts in (g, own):
            counts.reached[:reached] += 1
            counts.accepted[:acc] += 1

    def conditional(self, key: Hashable) -> np.ndarray:
        """``[k_max]`` estimated conditional acceptance ``a_j`` for ``key``."""
        if self._base is None:  # the global rate changes only when something is recorded
            g = self.global_
            self._base = (g.accepted + self.strength * self.prior) / (g.reached + self.strength)
        base = self._base
        own = self.per_key.get(key)
        if own is None:
            return base
        return (own.accepted + self.strength * base) / (own.reached + self.strength)

    def marginal(self, key: Hashable) -> np.ndarray:
        """``[k_max]`` chance that draft token ``j`` is emitted: ``a_1 ... a_j``."""
        return np.cumprod(self.conditional(key))

    def forget(self, key: Hashable) -> None:
        self.per_key.pop(key, None)


@dataclass
class RowStep:
    """One row of one step, as the host sees it: the committed tokens and the full draft proposed."""

    key: Hashable
    tokens: np.ndarray  # [n] committed tokens (a view is fine); tokens[-1] is the root
    draft: Sequence[int]  # the method's draft for this step (up to k_max tokens), before the controller cuts it


@dataclass
class _Pending:
    start: int  # committed length when the draft was made
    root: int  # tokens[start - 1] then (detects a row taken by another request)
    draft: list[int]
    sent: int  # how many of them the controller sent
    step: int
    matched: int = 0  # leading draft tokens seen committed so far
    realised: bool = False  # the sent part's outcome is logged


@dataclass
class _LogRecord:
    step: int
    batch: int
    ks: list[int]
    expected_accepted: float
    expected_speedup: float | None
    cost: tuple[float, float]
    why: str = ""
    realised_accepted: int = 0
    pending: int = 0
    awaiting_time: bool = True  # the host reports the step's time after the decision
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"step": self.step, "batch": self.batch, "k": self.ks, "drafted": int(sum(self.ks)),
                "expected_accepted": round(self.expected_accepted, 3), "realised_accepted": self.realised_accepted,
                "expected_speedup": None if self.expected_speedup is None else round(self.expected_speedup, 4), "cost_a_s": self.cost[0], "cost_b_s_per_token": self.cost[1], "why": self.why, **self.extra}


class KController:
    """Chooses each row's draft length per step (see the module docstring)."""

    def __init__(self, config: ControlConfig | dict | None, k_max: int, log_capacity: int = 100_000) -> None:
        parsed = parse_control(config) or ControlConfig()
        if k_max < 1:
            raise ControlConfigError(f"k_max must be >= 1, got {k_max}")
        self.config = parsed
        self.k_max = k_max
        self.cost = CostModel()
        self.acceptance = AcceptanceModel(k_max, parsed.prior_acceptance, parsed.prior_strength, parsed.decay)
        self._pending: dict[Hashable, _Pending] = {}
        self._line_used = (0.0, 0.0)  # the local cost line the last plan priced tokens with (logged)
        self._last_k: dict[Hashable, int] = {}
        self._last_draft: dict[Hashable, int] = {}
        self.steps = 0
        self.log: deque[dict] = deque(maxlen=log_capacity)
        self._open: dict[int, _LogRecord] = {}
        self._log_file = open(parsed.log_path, "a", encoding="utf-8") if parsed.log_path else None  # noqa: SIM115 - lives with the controller
        self.totals = {"steps": 0, "drafted": 0, "accepted": 0, "speculating_steps": 0, "control_s": 0.0, "draft_s": 0.0}

    # -- measurements ----------------------------------------------------------------------------
    def record_step_time(self, tokens: int, seconds: float) -> None:
        """The host's time for one step whose forward ran ``tokens`` tokens (rows plus drafts sent):
        the step of the latest decision, whose log record keeps it (``step_ms``)."""
        self.cost.add_step(tokens, seconds)
        record = self._open.get(self.steps)
        if record is not None and math.isfinite(seconds):
            record.extra["step_ms"] = round(seconds * 1e3, 3)
            record.extra["tokens"] = int(tokens)

    def record_draft_time(self, drafted: int, seconds: float) -> None:
        self.cost.add_draft(drafted, seconds)

    def _resolve(self, key: Hashable, tokens: np.ndarray) -> None:
        """Compare the row's pending draft with what it has committed since; count it once decided."""
        pending = self._pending.get(key)
        if pending is None:
            return
        n = len(tokens)
        if n < pending.start or int(tokens[pending.start - 1]) != pending.root:  # another request took the row
            self._drop(key)
            return
        new = tokens[pending.start : pending.start + len(pending.draft)].tolist()  # a few ints: plain Python beats numpy here
        if not new:
            return
        matched = next((j for j, (x, y) in enumerate(zip(new, pending.draft)) if x != y), len(new))
        pending.matched = matched
        decided = matched < len(new) or len(new) == len(pending.draft)
        if pending.sent > 0 and not pending.realised and (matched < len(new) or len(new) > pending.sent):
            pending.realised = True
            self.totals["accepted"] += min(matched, pending.sent)
            record = self._open.get(pending.step)
            if record is not None:
                record.realised_accepted += min(matched, pending.sent)
                record.pending -= 1
                self._close(pending.step)
        if decided:
            self.acceptance.record(key, matched, matched + 1 if matched < len(new) else len(new))
            del self._pending[key]

    def _drop(self, key: Hashable, forget: bool = True) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None and pending.sent > 0 and not pending.realised and pending.step in self._open:
            self._open[pending.step].pending -= 1
            self._close(pending.step)
        if forget:
            self.acceptance.forget(key)
            self._last_k.pop(key, None)

    def finish(self, key: Hashable) -> None:
        """The request in ``key`` ended: its state goes."""
        self._drop(key)
        self._last_draft.pop(key, None)

    # -- the decision ----------------------------------------------------------------------------
    def wants_draft(self, key: Hashable) -> bool:
        """Whether the host should run the drafter for ``key`` this step (hosts where drafting costs
        and can be skipped: the reference engine). Always in the fixed and schedule modes and while
        warming up; in the adaptive mode when the row's last decision sent tokens, or as a probe
        every ``probe_every`` steps, so acceptance that rises is still seen."""
        if self.config.mode != "adaptive" or self.steps < self.config.warmup_steps or self._last_k.get(key, 1) > 0:
            return True
        return self.steps + 1 - self._last_draft.get(key, -(10**9)) >= self.config.probe_every

    def choose(self, rows: Sequence[RowStep], draft_seconds: float | None = None) -> list[int]:
        """How many of each row's draft tokens to send this step (``0``: none). ``draft_seconds``: the
        host's time to draft this step's rows, logged (``draft_ms``) beside the controller's own."""
        started = time.perf_counter()
        previous = self._open.get(self.steps)
        if previous is not None:  # the host has reported the previous step's time by now, if it ever will
            previous.awaiting_time = False
            self._close(self.steps)
        for row in rows:
            self._resolve(row.key, np.asarray(row.tokens))
        batch = len(rows)
        lengths = [min(len(r.draft), self.k_max) for r in rows]
        config = self.config
        self.steps += 1
        expected_speedup = None
        probs = [self.acceptance.marginal(r.key)[:n] for r, n in zip(rows, lengths)]
        if config.mode == "fixed":
            ks, why = list(lengths), "fixed"
        elif config.mode == "schedule":
            k = schedule_lookup(config.schedule, batch)
            ks, why = [min(k, n) for n in lengths], "schedule"
        elif self.steps <= config.warmup_steps or not self.cost.ready:
            # measure: k cycles k_max, k_max - 1, ..., 0 so the cost curve gets points at several token counts
            ks, why = self._explore(probs, lengths, self.k_max - (self.steps - 1) % (self.k_max + 1)), "warmup"
        elif not self.cost.knows(batch, self._explore_budget(batch)):
            # a batch size whose token counts are not measured yet (the batch grew): a plain step, then
            # steps with the exploration budget's likeliest tokens, until both sides of the curve are seen
            plain_side = self.cost.measured(batch / 2, batch) >= 2
            ks, why = ([0] * batch, "probe") if not plain_side else (self._explore(probs, lengths, self.k_max), "probe")
        else:
            (ks, expected_speedup), why = self._plan(probs, batch), "plan"
        if config.min_acceptance > 0:
            ks = [int(min(k, np.searchsorted(-p, -config.min_acceptance, side="right"))) for k, p in zip(ks, probs)]
        expected = float(sum(p[:k].sum() for p, k in zip(probs, ks)))
        line = self._line_used if why == "plan" else self.cost._ab if why in ("fixed", "schedule") else (self.cost.a, self.cost.b)
        record = _LogRecord(self.steps, batch, ks, expected, expected_speedup, (round(line[0], 6), round(line[1], 7)), why)
        for row, k in zip(rows, ks):
            tokens = np.asarray(row.tokens)
            self._last_k[row.key] = k
            if len(row.draft):
                self._last_draft[row.key] = self.steps
            old = self._pending.get(row.key)
            if old is not None and k > 0:  # a sent draft replaces a shadow one: what was seen of it so far counts (censored)
                self.acceptance.record(row.key, old.matched, old.matched)
                self._drop(row.key, forget=False)
                old = None
            if old is None and len(row.draft) and len(tokens):
                self._pending[row.key] = _Pending(len(tokens), int(tokens[-1]), [int(t) for t in row.draft[: self.k_max]], k, self.steps)
                if k > 0:
                    record.pending += 1
        self.totals["steps"] += 1
        self.totals["drafted"] += int(sum(ks))
        self.totals["speculating_steps"] += int(any(ks))
        control_s = time.perf_counter() - started
        self.totals["control_s"] += control_s
        record.extra["control_ms"] = round(control_s * 1e3, 3)
        if draft_seconds is not None:
            self.totals["draft_s"] += draft_seconds
            record.extra["draft_ms"] = round(draft_seconds * 1e3, 3)
        self._open[self.steps] = record
        return ks

    def _explore_budget(self, batch: int) -> int:
        """The most draft tokens a measuring step sends: ``k_max``, or a fraction of a large batch."""
        return max(self.k_max, math.ceil(self.config.explore_fraction * batch))

    def _explore(self, probs: list[np.ndarray], lengths: list[int], k: int) -> list[int]:
        """``k`` per row (at most its draft), cut to the exploration budget by keeping the likeliest
        tokens (by ``P_j``, each row's positions in order): measuring the curve at a large batch costs
        a bounded share of a step, and the tokens it pays for are the ones most likely to be emitted."""
        want = [min(k, n) for n in lengths]
        budget = self._explore_budget(len(lengths))
        if sum(want) <= budget:
            return want
        ks = [0] * len(lengths)
        for _, j, i in sorted((-float(p[j]), j, i) for i, p in enumerate(probs) for j in range(want[i])):
            if budget == 0:
                break
            if j == ks[i]:
                ks[i] = j + 1
                budget -= 1
        return ks

    def _plan(self, probs: list[np.ndarray], batch: int) -> tuple[list[int], float]:
        """Greedy over all rows' draft tokens by decreasing ``P_j`` while ``E / c(T)`` rises."""
        cost = self.cost.local(batch * (1 + 0.5 * self.k_max) ** 0.5)  # the curve's slope near this batch's token counts
        self._line_used = (cost.a, cost.b)
        ks = [0] * batch
        candidates = sorted(((float(p[j]), i, j) for i, p in enumerate(probs) for j in range(len(p))), reverse=True)
        expected, tokens, drafted = float(batch), float(batch), 0
        plain = batch / max(cost.cost(batch), 1e-12)
        best = plain
        for p, i, j in candidates:
            if j != ks[i]:  # positions are taken in order per row (P_j never rises with j)
                continue
            rate = (expected + p) / max(cost.cost(tokens + 1, drafted + 1), 1e-12)
            if rate <= best:
                break
            best, expected, tokens, drafted = rate, expected + p, tokens + 1, drafted + 1
            ks[i] = j + 1
        if best < plain * (1.0 + self.config.margin):
            return [0] * batch, 1.0
        return ks, best / plain

    # -- the log ---------------------------------------------------------------------------------
    def _close(self, step: int) -> None:
        record = self._open.get(step)
        if record is None or record.pending > 0 or record.awaiting_time:
            return
        del self._open[step]
        entry = record.as_dict()
        self.log.append(entry)
        if self._log_file is not None:
            self._log_file.write(json.dumps(entry) + "\n")
            self._log_file.flush()

    def flush(self) -> None:
        """Write every step still waiting for its realised acceptance (at the end of a run)."""
        for step in sorted(self._open):
            self._open[step].pending = 0
            self._open[step].awaiting_time = False
            self._close(step)

    def summary(self) -> dict:
        """Totals over the run: steps, drafted and accepted tokens, steps that speculated, the cost fit."""
        a = self.acceptance.global_
        cond = (a.accepted / np.maximum(a.reached, 1e-9)).round(3).tolist()
        return {**self.totals, "cost_a_s": self.cost.a, "cost_b_s_per_token": self.cost.b,
                "draft_s_per_token": self.cost.draft_s_per_token, "acceptance_by_position": cond}
