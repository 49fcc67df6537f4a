"""Drafters replayed on recorded greedy decodes: MAT, acceptance and per-step cost, peers side by side.

Greedy speculative decoding is lossless, so every method emits the same tokens, and which draft
tokens are accepted depends only on those tokens: a draft token is accepted while it equals the next
greedy token. Given one engine's greedy outputs, each method's MAT is therefore found exactly by
replaying the decode through its drafter as vLLM calls it, step by step: the accepted draft tokens
plus the bonus token are committed, and the drafter sees the grown history. Requests are replayed
one after another in row 0 (batch 1, Spec-Bench's setting; a cross-request cache holds the earlier
outputs, as it would in a server after those requests finished).

Drafters (a :class:`StepDrafter` each, built by :func:`drafters`):

- ``vllm_ngram``: vLLM's own ``NgramProposer`` (numba);
- ``vllm_suffix``: vLLM's own ``SuffixDecodingProposer`` (ArcticInference's suffix tree; needs
  ``pip install arctic-inference``), driven with the request ids it expects (both built by
  :mod:`specplug.integrations.vllm.peers`);
- ``<id>`` for specplug methods: the custom_class adapter exactly as vLLM runs it (row tracking,
  the batched path where the proposer has one);
- ``<id>_tree``: the proposer's whole tree as the reference engine verifies it (longest accepted
  root-to-node path), with real request ids.

:func:`time_steps` replays the same token arrays at a given batch size through every drafter and
reports the median time per step, each drafter timed on the same arrays in the same loop.

Per request the replay counts with :class:`specplug.counts.AcceptanceCounts` (``new_tokens`` is the
output's length), so its MAT and acceptance are the engine's and the benchmarks' definitions.
This module never imports vllm itself.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from specplug.counts import AcceptanceCounts

__all__ = ["StepDrafter", "drafters", "replay", "replay_inputs", "summarize", "time_steps"]


@dataclass
class StepDrafter:
    """One method's drafter in vLLM's calling convention, over a ``[rows, max_len]`` token buffer.

    ``step(sampled, lengths, token_ids, request_ids, prompt_lens)`` returns one draft per row (a
    list of ids, or a :class:`~specplug.protocols.Draft` for tree replay); ``request_ids`` and
    ``prompt_lens`` are only read by drafters that need real ids (vLLM's suffix, tree replay).
    """

    name: str
    step: Callable[..., list]
    tree: bool = False


def drafters(names: list[str], k: int, max_model_len: int, max_num_seqs: int,
             options: dict[str, dict] | None = None, ngram: tuple[int, int] = (1, 3),
             variants: dict[str, tuple[str, dict]] | None = None) -> list[StepDrafter]:
    """Fresh drafters for ``names`` (see the module docstring for what each name means).

    ``variants`` maps extra names to ``(name, options)``: the same drafter with other options, for
    example ``{"suffix_f4": ("suffix", {"max_spec_factor": 4})}``; for ``vllm_suffix`` the option
    ``max_spec_factor`` sets vLLM's ``suffix_decoding_max_spec_factor``.
    """
    made = []
    for label in names:
        name, extra = (variants or {}).get(label, (label, {}))
        base = name.removesuffix("_tree")
        mine = {**(options or {}), base: {**(options or {}).get(base, {}), **extra}}  # this drafter's options only
        made.append(_drafter(name, label, k, max_model_len, max_num_seqs, mine, ngram))
    return made


def _drafter(name: str, label: str, k: int, max_model_len: int, max_num_seqs: int, options: dict, ngram) -> StepDrafter:
    if name == "vllm_ngram":
        from specplug.integrations.vllm.peers import vllm_ngram

        return StepDrafter(label, vllm_ngram(k, max_model_len, max_num_seqs, ngram))
    if name == "vllm_suffix":
        from specplug.integrations.vllm.peers import vllm_suffix

        factor = float(options.get("vllm_suffix", {}).get("max_spec_factor", 1.0))
        return StepDrafter(label, vllm_suffix(k, max_model_len, max_num_seqs, factor))
    if name.endswith("_tree"):
        return StepDrafter(label, _tree(name.removesuffix("_tree"), k, max_model_len, options), tree=True)
    from specplug.integrations.vllm.adapter import adapter_class
    from specplug.integrations.vllm.peers import vllm_config
    from specplug.registry import get_registry

    adapter = adapter_class(get_registry().method(name))(vllm_config(k, max_model_len, max_num_seqs, options.get(name)))
    return StepDrafter(label, lambda s, n, ids, r, p: adapter.propose(s, n, ids))


def _tree(method: str, k: int, max_model_len: int, options: dict[str, dict]):
    from specplug.protocols import ProposalRequest
    from specplug.registry import get_registry

    proposer = get_registry().method(method).build(options.get(method))
    live: dict[int, str] = {}

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        drafts = []
        for row, rid in enumerate(request_ids):
            if live.get(row) != rid:
                if row in live:
                    proposer.finish_request(live[row])
                live[row] = rid
                proposer.start_request(rid, np.asarray(token_ids[row, : prompt_lens[row]], dtype=np.int64))
            n = int(lengths[row])
            drafts.append(proposer.propose(ProposalRequest(rid, token_ids[row, :n], int(prompt_lens[row]),
                                                           min(k, max_model_len - n - 1))))
        return drafts

    return step


def _accepted(draft, truth: list[int]) -> tuple[int, int]:
    """(draft size, accepted tokens) of a chain (list) or a tree (Draft: longest matching path)."""
    if hasattr(draft, "parent_array"):
        parents, tokens = draft.parent_array(), draft.token_ids
        depth = {-1: 0}
        best = 0
        for i in range(len(draft)):
            d = depth.get(int(parents[i]))
            if d is not None and d < len(truth) and int(tokens[i]) == truth[d]:
                depth[i] = d + 1
                best = max(best, d + 1)
        return len(draft), best
    acc = 0
    while acc < len(draft) and acc < len(truth) and draft[acc] == truth[acc]:
        acc += 1
    return len(draft), acc


def replay(drafter: StepDrafter, prompts: list[list[int]], outputs: list[list[int]], max_model_len: int,
           ids: list[str] | None = None) -> list[AcceptanceCounts]:
    """Greedy speculative decoding of each prompt in turn, in row 0; see the module docstring."""
    token_ids = np.zeros((1, max_model_len), dtype=np.int32)  # [max_num_seqs=1, max_model_len]
    out = []
    for index, (prompt, output) in enumerate(zip(prompts, outputs)):
        rid = [ids[index] if ids else f"req-{index}"]
        token_ids[0, :] = 0
        token_ids[0, : len(prompt)] = prompt
        stats = AcceptanceCounts(new_tokens=1, steps=1)  # the prefill emits the first token
        if not output:
            out.append(AcceptanceCounts())
            continue
        token_ids[0, len(prompt)] = output[0]
        n, sampled = len(prompt) + 1, [output[0]]
        while stats.new_tokens < len(output):
            draft = drafter.step([sampled], np.array([n], dtype=np.int32), token_ids, rid, [len(prompt)])[0]
            truth = output[stats.new_tokens :]
            size, acc = _accepted(draft, truth)
            commit = truth[: acc + 1]
            token_ids[0, n : n + len(commit)] = commit
            n += len(commit)
            stats.new_tokens += len(commit)
            stats.steps += 1
            stats.drafted += size
            stats.accepted += min(acc, len(commit))
            sampled = commit
        out.append(stats)
    return out


def replay_inputs(sequences: list[list[int]], prompt_lens: list[int], batch: int, max_model_len: int):
    """``(token_ids, lengths, starts)``: rows of ``batch`` sequences (cycled), per step the committed length
    of every row, and each row's prompt length."""
    rows = [sequences[i % len(sequences)] for i in range(batch)]
    starts = [prompt_lens[i % len(sequences)] for i in range(batch)]
    token_ids = np.zeros((batch, max_model_len), dtype=np.int32)  # [batch, max_model_len]
    for i, row in enumerate(rows):
        token_ids[i, : len(row)] = row
    steps = max(len(r) - s for r, s in zip(rows, starts))
    lengths = [np.array([min(s + t + 1, len(r)) for r, s in zip(rows, starts)], dtype=np.int32) for t in range(steps)]
    return token_ids, lengths, starts


def time_steps(make: Callable[[], list[StepDrafter]], sequences: list[list[int]], prompt_lens: list[int], batch: int,
               max_model_len: int, repeats: int = 3) -> dict[str, float]:
    """Median microseconds per step of each drafter at ``batch`` rows, on the same arrays, same loop.

    Rows hold ``batch`` of the sequences (cycled); every step each row commits one more token, so
    all rows stay live until the longest output ends. The first pass warms up (compilation) and is
    not timed; each timed pass starts from fresh drafters.
    """
    token_ids, lengths, starts = replay_inputs(sequences, prompt_lens, batch, max_model_len)
    request_ids = [f"row-{i}" for i in range(batch)]
    # every row emitted one token this step: the last one of its history
    sampled = [[[int(token_ids[i, n[i] - 1])] for i in range(batch)] for n in lengths]
    times: dict[str, list[float]] = {}
    for rep in range(repeats + 1):
        made = make()
        for n, emitted in zip(lengths, sampled):
            for d in made:
                t0 = time.perf_counter()
                d.step(emitted, n, token_ids, request_ids, starts)
                if rep:
                    times.setdefault(d.name, []).append(time.perf_counter() - t0)
    return {name: statistics.median(v) * 1e6 for name, v in times.items()}


def summarize(stats: list[AcceptanceCounts]) -> dict[str, Any]:
    """The sums of replayed requests and their MAT and acceptance (0 where undefined), as the results record them."""
    total = AcceptanceCounts.merge(stats)
    return {"prompts": len(stats), "emitted": total.new_tokens, "steps": total.steps, "drafted": total.drafted,
            "accepted": total.accepted, "mat": total.mat or 0.0, "acceptance": total.acceptance_rate or 0.0}
