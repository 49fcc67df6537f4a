"""Drafter replay (:mod:`specplug.bench.replay`): its counts and the per-step timing loop (the batch-1 /
batch-32 drafter-time figures)."""

from __future__ import annotations

import numpy as np

from specplug.bench.replay import StepDrafter, replay, replay_inputs, summarize, time_steps
from specplug.counts import AcceptanceCounts

PROMPT, OUTPUT = [1, 2, 3], [4, 5, 6, 7, 8, 9, 10]


def oracle(k: int) -> StepDrafter:
    """Drafts the next ``k`` tokens of PROMPT + OUTPUT: every draft token is accepted."""
    sequence = PROMPT + OUTPUT

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        n = int(lengths[0])
        assert token_ids[0, :n].tolist() == sequence[:n]  # the replay committed exactly the greedy tokens
        return [sequence[n : n + k]]

    return StepDrafter("oracle", step)


def test_replay_counts_accepted_drafts_plus_the_bonus_token_per_step():
    (counts,) = replay(oracle(2), [PROMPT], [OUTPUT], max_model_len=16)
    # prefill emits 4; then [5, 6] accepted + bonus 7; then [8, 9] + bonus 10
    assert counts == AcceptanceCounts(drafted=4, accepted=4, steps=3, new_tokens=7)
    (plain,) = replay(StepDrafter("none", lambda *args: [[]]), [PROMPT], [OUTPUT], max_model_len=16)
    assert plain == AcceptanceCounts(steps=7, new_tokens=7)


def test_summarize_sums_requests_and_reports_zero_where_nothing_was_drafted():
    counts = replay(oracle(2), [PROMPT, PROMPT], [OUTPUT, []], max_model_len=16)
    assert summarize(counts) == {"prompts": 2, "emitted": 7, "steps": 3, "drafted": 4, "accepted": 4, "mat": 7 / 3,
                                 "acceptance": 1.0}
    assert summarize([AcceptanceCounts(steps=2, new_tokens=2)])["acceptance"] == 0.0


def test_replay_inputs_cycles_rows_and_commits_one_token_per_step():
    sequences = [[1, 2, 3, 4, 5], [7, 8, 9]]
    token_ids, lengths, starts = replay_inputs(sequences, [2, 1], batch=3, max_model_len=8)
    assert token_ids.shape == (3, 8)
    assert token_ids[2, :5].tolist() == sequences[0]  # row 2 cycles back to the first sequence
    assert starts == [2, 1, 2]
    assert [n.tolist() for n in lengths] == [[3, 2, 3], [4, 3, 4], [5, 3, 5]]  # rows stop at their end


def test_time_steps_calls_every_drafter_on_the_same_arrays_and_reports_microseconds():
    seen: list[tuple[list[int], list[str], list[int]]] = []

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        seen.append((np.asarray(lengths).tolist(), list(request_ids), list(prompt_lens)))
        return [[] for _ in request_ids]

    times = time_steps(lambda: [StepDrafter("probe", step)], [[1, 2, 3, 4], [5, 6, 7]], [1, 2], batch=2,
                       max_model_len=8, repeats=2)
    assert set(times) == {"probe"} and times["probe"] > 0
    steps = 3  # the longest row's output: 4 - 1 tokens
    assert len(seen) == steps * 3  # one warm-up pass, then two timed passes
    assert seen[0] == ([2, 3], ["row-0", "row-1"], [1, 2])


def test_repetition_writes_replayed_counts_as_a_bench_document(tmp_path):
    """The repetition kind turns each replayed request's counts into one record (MAT = new tokens / steps)."""
    from types import SimpleNamespace

    from specplug.bench.kinds.repetition import write_bench_results
    from specplug.bench.results import load_results
    from specplug.counts import AcceptanceCounts

    prompts = [{"id": "a", "category": "agentic"}, {"id": "b", "category": "agentic"}]
    replayed = {"pld": [AcceptanceCounts(new_tokens=12, steps=8, drafted=10, accepted=4),
                        AcceptanceCounts(new_tokens=6, steps=6, drafted=5, accepted=0)]}
    args = SimpleNamespace(k=5, max_tokens=32, name="vllm_repetition", out_dir=tmp_path)
    results = {"hardware": "h", "date": "d", "vllm_version": "0.32.0", "command": "c"}
    json_out, _ = write_bench_results("agentic", prompts, replayed, args, results)
    doc = load_results(json_out)
    assert [r["new_tokens"] for r in doc.records] == [12, 6]
    assert doc.summary["pld"]["overall"]["mat"] == 18 / 14
