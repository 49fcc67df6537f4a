"""The per-step timing loop of :mod:`specplug.bench.replay` (the batch-1 / batch-32 drafter-time figures)."""

from __future__ import annotations

import numpy as np

from specplug.bench.replay import StepDrafter, replay_inputs, time_steps


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
