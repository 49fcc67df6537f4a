"""The draft-length controller (specplug.kit.k_control): bad input, the cost model, the plan, shadow
acceptance, the decision log, and greedy output equal to plain at every k (0 included) in the engine."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from specplug.kit.k_control import (
    ControlConfigError,
    CostModel,
    KController,
    RowStep,
    parse_control,
    schedule_lookup,
    validate_schedule,
)


# -- bad input: a clear error at start ------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, words",
    [
        ([[1, 4, 5], [6, 64, 0]], "gap: batch sizes 5-5"),
        ([[1, 8, 5], [4, 64, 0]], "overlap"),
        ([[2, 64, 3]], "must start at 1"),
        ([[1, 0, 3]], "first <= last"),
        ([[1, 4, -1]], "k must be >= 0"),
        ([], "non-empty"),
        ([[1, 4]], "[first_batch_size, last_batch_size, k]"),
    ],
)
def test_bad_schedule_is_a_clear_error(schedule, words):
    with pytest.raises(ControlConfigError, match=None) as err:
        parse_control({"mode": "schedule", "schedule": schedule})
    assert words in str(err.value)


@pytest.mark.parametrize("key", ["prior_acceptance", "min_acceptance"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_thresholds_outside_unit_interval_are_refused(key, value):
    with pytest.raises(ControlConfigError, match=rf"{key}.*\[0, 1\]"):
        KController({key: value}, k_max=4)


def test_unknown_key_and_schedule_mode_without_schedule():
    with pytest.raises(ControlConfigError, match="Known keys"):
        parse_control({"modee": "adaptive"})
    with pytest.raises(ControlConfigError, match='mode "schedule" needs a schedule'):
        parse_control({"mode": "schedule"})


def test_schedule_lookup_follows_ranges_and_carries_the_last():
    schedule = validate_schedule([[5, 64, 0], [1, 4, 3]])  # order does not matter
    assert [schedule_lookup(schedule, b) for b in (1, 4, 5, 64, 200)] == [3, 3, 0, 0, 0]


# -- the cost model and the plan --------------------------------------------------------------------


def test_cost_model_recovers_a_linear_curve():
    cost = CostModel()
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = int(rng.integers(1, 60))
        cost.add_step(t, 0.02 + 0.003 * t)
    assert cost.a == pytest.approx(0.02, rel=1e-6)
    assert cost.b == pytest.approx(0.003, rel=1e-6)


def _controller_with_cost(a: float, b: float, acceptance: float, k_max: int = 4, **config) -> KController:
    ctl = KController({"warmup_steps": 2, "prior_acceptance": acceptance, "prior_strength": 1e9, "margin": 0.0, **config}, k_max)
    for t in range(1, 80):
        for _ in range(2):  # two samples per token count: measured, not a probe
            ctl.record_step_time(t, a + b * t)
    ctl.steps = 10  # past the warm-up
    return ctl


def _rows(batch: int, k: int) -> list[RowStep]:
    return [RowStep(i, np.array([1, 2, 3]), [7] * k) for i in range(batch)]


def test_plan_speculates_when_tokens_are_cheap_and_not_when_they_are_dear():
    # batch 1, a forward dominated by its fixed cost (a GPU-like curve): draft the whole k
    assert _controller_with_cost(0.05, 0.0005, 0.7).choose(_rows(1, 4)) == [4]
    # batch 26 with the cost linear in tokens (a CPU-like curve) and 30% acceptance: never
    assert _controller_with_cost(0.001, 0.004, 0.3).choose(_rows(26, 4)) == [0] * 26


def test_plan_is_the_best_allocation_by_brute_force():
    """The greedy plan maximises expected tokens / c(T) over every allocation of draft lengths."""
    rng = np.random.default_rng(1)
    for _ in range(30):
        a, b = float(rng.uniform(0.001, 0.05)), float(rng.uniform(0.0001, 0.01))
        ctl = _controller_with_cost(a, b, 0.5, k_max=3)
        batch = 3
        probs = [np.cumprod(rng.uniform(0.05, 0.95, 3)) for _ in range(batch)]
        ks, _ = ctl._plan(probs, batch)

        def rate(alloc):
            tokens = batch + sum(alloc)
            return (batch + sum(p[:k].sum() for p, k in zip(probs, alloc))) / ctl.cost.cost(tokens, sum(alloc))

        best = max(rate(alloc) for alloc in itertools.product(range(4), repeat=batch))
        assert rate(ks) == pytest.approx(best, rel=1e-9)


# -- acceptance by shadow, the log -------------------------------------------------------------------


def test_acceptance_is_measured_even_when_nothing_is_sent():
    """With k = 0 the controller still learns which positions would have been accepted."""
    ctl = KController({"mode": "schedule", "schedule": [[1, 8, 0]], "prior_acceptance": 0.5, "prior_strength": 1.0}, k_max=3)
    truth = list(range(10, 60))
    for n in range(3, 40):  # one token committed per step; the draft always guesses the next two right, then wrong
        tokens = np.array(truth[:n])
        draft = [truth[n], truth[n + 1], 999]
        assert ctl.choose([RowStep("r", tokens, draft)]) == [0]
    rates = ctl.acceptance.conditional("r")
    assert rates[0] > 0.9 and rates[1] > 0.9 and rates[2] < 0.15


def test_log_has_batch_k_expected_and_realised(tmp_path):
    log = tmp_path / "decisions.jsonl"
    ctl = KController({"mode": "fixed", "log_path": str(log)}, k_max=3)
    truth = list(range(100, 140))
    n = 4
    while n < 30:
        tokens = np.array(truth[:n])
        draft = [truth[n], truth[n + 1], 7]  # two right, the third wrong
        (k,) = ctl.choose([RowStep("r", tokens, draft)])
        n += 3  # what the verifier emits: 2 accepted + the bonus
    ctl.flush()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and set(records[0]) >= {"step", "batch", "k", "expected_accepted", "realised_accepted"}
    assert all(r["batch"] == 1 and r["k"] == [3] for r in records)
    assert all(r["realised_accepted"] == 2 for r in records[:-1])  # the last step is never verified here


# -- the reference engine: greedy identical to plain at every k, 0 included ---------------------------


@pytest.fixture(scope="module")
def tiny_setup():
    from specplug.testing import tiny_llama
    from specplug.testing.lossless import greedy_reference

    model = tiny_llama(seed=3)
    prompts = [[1, 5, 9, 1, 5, 9, 1, 5], [3, 3, 4, 3, 3, 4, 2]]
    return model, prompts, greedy_reference(model, prompts, 24)


@pytest.mark.parametrize(
    "control",
    [{"mode": "schedule", "schedule": [[1, 1000, k]]} for k in range(0, 5)] + [{"mode": "adaptive", "warmup_steps": 3}],
    ids=[f"k{k}" for k in range(0, 5)] + ["adaptive"],
)
def test_engine_greedy_identical_to_plain_under_the_controller(tiny_setup, control):
    from specplug.engine import ReferenceEngine
    from specplug.testing import NoisyOracleProposer

    model, prompts, references = tiny_setup
    engine = ReferenceEngine(model)
    results = engine.generate(prompts, NoisyOracleProposer(references, 128, corrupt=0.3), "greedy_match", k=4, max_new_tokens=24, control=control)
    for prompt, result in zip(prompts, results):
        assert result.token_ids == references[tuple(prompt)]
    drafted = sum(r.stats.drafted for r in results)
    if control["mode"] == "schedule":
        k = control["schedule"][0][2]
        assert (drafted == 0) if k == 0 else (0 < drafted <= k * sum(r.stats.steps for r in results))
        assert all(max(rec["k"]) <= k for rec in engine.controller.log)
    assert engine.controller.log, "every step is logged"


def test_engine_adaptive_stops_speculating_when_drafts_never_land(tiny_setup):
    """A proposer that is always wrong: after the warm-up the controller sends nothing, and drafts only to probe."""
    from specplug.engine import ReferenceEngine
    from specplug.testing import NoisyOracleProposer

    model, prompts, references = tiny_setup
    engine = ReferenceEngine(model)
    proposer = NoisyOracleProposer(references, 128, corrupt=1.0, seed=5)
    results = engine.generate(prompts, proposer, "greedy_match", k=4, max_new_tokens=24, control={"warmup_steps": 3, "probe_every": 4, "prior_acceptance": 0.0})
    for prompt, result in zip(prompts, results):
        assert result.token_ids == references[tuple(prompt)]
    late = [rec for rec in engine.controller.log if rec["step"] > 3]
    assert late and all(rec["k"] == [0] for rec in late)
    probes = sum(rec["step"] % 4 == 0 for rec in late)
    assert sum(r.stats.drafted for r in results) == 4 + 3 + 2  # the warm-up's drafts only (k cycles 4, 3, 2)
    assert len([c for c in proposer.calls if c.startswith("observe")]) <= 3 + probes + 2


def test_cost_slope_is_local_to_the_batch():
    """A CPU-like curve, flat up to 8 tokens then linear: tokens are free at batch 1 and dear at batch 40."""
    cost = CostModel()
    for t in list(range(1, 7)) + list(range(26, 80, 3)):
        for _ in range(4):
            cost.add_step(t, 0.05 + 0.004 * max(t - 8, 0))
    assert cost.local(1).b < 0.0005
    assert cost.local(40).b == pytest.approx(0.004, rel=0.05)


# -- a simulated host: the batch-1 phase, then the whole set in one batch ---------------------------


def _cpu_cost(tokens: int) -> float:
    """A CPU-like step time: flat while the forward is bound by reading the weights, then linear."""
    return 0.030 + 0.004 * max(tokens - 8, 0)


def _simulate(ctl: KController | None, rates: list[float], steps: int, k: int, seed: int) -> tuple[int, float]:
    """Rows whose drafts are right for a geometric number of tokens (per-row rate), one step at a time as
    a host runs them: the controller (or a fixed ``k`` when ``ctl`` is None) picks how many to send, the
    verifier commits the matching prefix plus one, the step costs ``_cpu_cost`` of its tokens.
    Returns (tokens emitted, seconds)."""
    rng = np.random.default_rng(seed)
    truths = [rng.integers(100, 50_000, size=20 + steps * (k + 2)) for _ in rates]
    lengths = [10] * len(rates)
    keys = [("row", seed, i) for i in range(len(rates))]
    emitted, seconds = 0, 0.0
    for _ in range(steps):
        drafts = []
        for truth, n, rate in zip(truths, lengths, rates):
            right = 0
            while right < k and rng.random() < rate:
                right += 1
            drafts.append([int(t) for t in truth[n : n + right]] + [1] * (k - right))
        rows = [RowStep(key, truth[:n], d) for key, truth, n, d in zip(keys, truths, lengths, drafts)]
        ks = ctl.choose(rows) if ctl is not None else [k] * len(rows)
        step_s = _cpu_cost(len(rows) + sum(ks))
        if ctl is not None:
            ctl.record_step_time(len(rows) + sum(ks), step_s)
        for i, (d, sent) in enumerate(zip(drafts, ks)):
            truth, n = truths[i], lengths[i]
            matched = next((j for j in range(sent) if d[j] != truth[n + j]), sent)
            lengths[i] += matched + 1
            emitted += matched + 1
        seconds += step_s
    return emitted, seconds


def test_whole_batch_never_slower_than_plain_and_batch1_near_the_fixed_k():
    """Issue 22's goal on a simulated CPU curve: one controller sees batch 1 first (tokens nearly free:
    speculation pays), then 26 rows (the forward is linear in tokens: it only pays for the likeliest
    tokens). Exploring the new batch size costs a bounded share, so the whole batch stays >= 0.98x plain
    decoding, while batch 1 keeps >= 0.95x of a fixed k's speedup. The control: a controller that
    trusts the curve it measured at batch 1 for 26 rows (no probe) loses more than 2%."""
    k = 5
    rates26 = list(np.linspace(0.05, 0.9, 26))

    def run(config: dict, probe: bool = True) -> tuple[float, float]:
        ctl = KController(config, k)
        if not probe:
            ctl.cost.knows = lambda batch, spread: True
        one_tokens, one_s = 0, 0.0
        for seed, rate in enumerate([0.7, 0.5, 0.8, 0.6]):  # batch 1: four requests, one after another
            e, s = _simulate(ctl, [rate], 40, k, seed)
            one_tokens, one_s = one_tokens + e, one_s + s
        tokens, seconds = _simulate(ctl, rates26, 64, k, seed=99)
        plain = (26 * 64) / (64 * _cpu_cost(26))
        return (one_tokens / one_s) / (1 / _cpu_cost(1)), (tokens / seconds) / plain

    fixed_one = 0.0
    for seed, rate in enumerate([0.7, 0.5, 0.8, 0.6]):
        e, s = _simulate(None, [rate], 40, k, seed)
        fixed_one += e / s / 4
    fixed_speedup = fixed_one * _cpu_cost(1)

    batch1, whole = run({"mode": "adaptive"})
    assert whole >= 0.98, f"whole batch {whole:.3f}x plain"
    assert batch1 >= 0.95 * fixed_speedup, f"batch 1 {batch1:.2f}x vs fixed k {fixed_speedup:.2f}x"
    _, trusting = run({"mode": "adaptive"}, probe=False)
    assert trusting < 0.98, f"without the probe {trusting:.3f}x plain"


def test_a_new_batch_size_is_probed_within_the_budget_before_the_plan():
    """Measured only at batch 1 (T <= 6), the controller does not extrapolate that flat curve to 26
    rows: it measures plain decoding there, then sends at most a quarter of the batch in draft tokens
    (the likeliest), and plans only once both sides are measured."""
    ctl = KController({"mode": "adaptive", "warmup_steps": 2}, 5)
    for t in range(1, 7):
        for _ in range(3):
            ctl.record_step_time(t, 0.03)
    ctl.steps = 10
    rows = [RowStep(i, np.array([1, 2, 3]), [7] * 5) for i in range(26)]
    assert ctl.choose(rows) == [0] * 26  # plain decoding's side first
    for _ in range(2):
        ctl.record_step_time(26, _cpu_cost(26))
    ks = ctl.choose(rows)
    assert sum(ks) == 7
    for _ in range(2):
        ctl.record_step_time(33, _cpu_cost(33))
    ks = ctl.choose(rows)
    ctl.flush()
    assert [rec["why"] for rec in ctl.log] == ["probe", "probe", "plan"]
    assert ks == [0] * 26  # prior acceptance 0.5 at 4 ms a token against 31 ms for 26: no token pays
