"""The one counts type behind MAT and acceptance (:mod:`specplug.counts`) and the reports built on it."""

from __future__ import annotations

from dataclasses import dataclass

from specplug.bench.metrics import Aggregate, PromptRecord
from specplug.counts import AcceptanceCounts
from specplug.engine import GenerationStats


def test_ratios_are_none_where_the_counts_leave_them_undefined():
    assert AcceptanceCounts().mat is None and AcceptanceCounts().acceptance_rate is None
    counts = AcceptanceCounts(drafted=8, accepted=6, steps=4, new_tokens=10)
    assert counts.mat == 2.5 and counts.acceptance_rate == 0.75
    assert AcceptanceCounts(steps=3, new_tokens=3).acceptance_rate is None  # plain decoding drafts nothing


def test_merge_sums_every_field_and_concatenates_accept_lengths():
    a = AcceptanceCounts(drafted=4, accepted=2, steps=3, new_tokens=5, accept_lengths=[1, 1, 0])
    b = AcceptanceCounts(drafted=2, accepted=2, steps=1, new_tokens=3, accept_lengths=[2])
    total = AcceptanceCounts.merge([a, b])
    assert total == AcceptanceCounts(drafted=6, accepted=4, steps=4, new_tokens=8, accept_lengths=[1, 1, 0, 2])
    assert total.mat == 2.0  # a ratio of sums, not a mean of ratios (5/3 and 3/1 average to 2.33)
    assert a + b == total and a.accept_lengths == [1, 1, 0]  # + leaves its operands alone
    assert AcceptanceCounts.merge([]) == AcceptanceCounts()


def test_a_subclass_sums_its_own_fields_too_and_keeps_its_type():
    @dataclass
    class Timed(AcceptanceCounts):
        seconds: float = 0.0

    total = Timed.merge([Timed(steps=1, new_tokens=1, seconds=0.5), Timed(steps=1, new_tokens=3, seconds=1.5)])
    assert type(total) is Timed and total.seconds == 2.0 and total.mat == 2.0
    assert type(Timed(seconds=1.0) + Timed(seconds=2.0)) is Timed


def test_engine_stats_are_counts_with_timings_and_numbers_where_undefined():
    stats = GenerationStats.merge([GenerationStats(steps=2, new_tokens=4, drafted=4, accepted=2, wall_s=1.0,
                                                   accept_lengths=[2, 0]),
                                   GenerationStats(steps=1, new_tokens=1, wall_s=1.0, accept_lengths=[0])])
    assert isinstance(stats, AcceptanceCounts)
    assert (stats.mat, stats.acceptance_rate, stats.tokens_per_s, stats.accept_lengths) == (5 / 3, 0.5, 2.5, [2, 0, 0])
    assert GenerationStats().mat == 0.0 and GenerationStats().acceptance_rate == 0.0
    assert list(GenerationStats().to_dict()) == ["drafted", "accepted", "steps", "new_tokens", "draft_s", "verify_s",
                                                 "wall_s", "mat", "acceptance_rate", "tokens_per_s"]


def test_bench_aggregates_take_their_ratios_from_the_counts():
    agg = Aggregate()
    for steps, new, drafted, accepted in [(3, 5, 4, 2), (1, 3, 2, 2)]:
        agg.add(PromptRecord("p", "c", "pld", new_tokens=new, steps=steps, drafted=drafted, accepted=accepted))
    assert agg.counts == AcceptanceCounts(drafted=6, accepted=4, steps=4, new_tokens=8)
    assert (agg.mat, agg.acceptance_rate) == (2.0, 4 / 6)
    assert Aggregate().mat is None and Aggregate().acceptance_rate is None  # the results print "-"


def test_vllm_counters_become_counts_with_one_step_per_bonus_token():
    # vLLM reports drafted and accepted tokens; each engine step emits its accepted tokens plus one.
    counts = AcceptanceCounts.from_vllm(new_tokens=100, accepted=60, drafted=80)
    assert (counts.steps, counts.mat, counts.acceptance_rate) == (40, 2.5, 0.75)
    plain = AcceptanceCounts.from_vllm(new_tokens=32, accepted=0)
    assert (plain.mat, plain.acceptance_rate) == (1.0, None)
    assert AcceptanceCounts.from_vllm(0, 0).mat is None
