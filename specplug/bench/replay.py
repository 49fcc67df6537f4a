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
  ``pip install arctic-inference``), driven with the request ids it expects;
- ``<id>`` for specplug methods: the custom_class adapter exactly as vLLM runs it (row tracking,
  the batched path where the proposer has one);
- ``<id>_tree``: the proposer's whole tree as the reference engine verifies it (longest accepted
  root-to-node path), with real request ids.

:func:`time_steps` replays the same token arrays at a given batch size through every drafter and
reports the median time per step, each drafter timed on the same arrays in the same loop.

This module imports vllm only inside :func:`drafters` (the peers).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["ReplayStats", "StepDrafter", "drafters", "replay", "time_steps", "vllm_config"]


def vllm_config(k: int, max_model_len: int, max_num_seqs: int, options: dict | None = None,
                ngram: tuple[int, int] = (1, 3), suffix_factor: float = 1.0) -> SimpleNamespace:
    """The parts of a ``VllmConfig`` that vLLM's ngram and suffix proposers and specplug's adapter read."""
    return SimpleNamespace(
        speculative_config=SimpleNamespace(
            num_speculative_tokens=k, prompt_lookup_min=ngram[0], prompt_lookup_max=ngram[1],
            suffix_decoding_max_tree_depth=24, suffix_decoding_max_cached_requests=10000,
            suffix_decoding_max_spec_factor=suffix_factor, suffix_decoding_min_token_prob=0.1,
        ),
        model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: 1 << 30),
        scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
        parallel_config=SimpleNamespace(tensor_parallel_size=1),
        additional_config={"specplug": {"options": options or {}}},
    )


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
        from vllm.v1.spec_decode.ngram_proposer import NgramProposer

        proposer = NgramProposer(vllm_config(k, max_model_len, max_num_seqs, ngram=ngram))
        return StepDrafter(label, lambda s, n, ids, r, p: proposer.propose(k, s, n, ids))
    if name == "vllm_suffix":
        factor = float(options.get("vllm_suffix", {}).get("max_spec_factor", 1.0))
        return StepDrafter(label, _vllm_suffix(k, max_model_len, max_num_seqs, factor))
    if name.endswith("_tree"):
        return StepDrafter(label, _tree(name.removesuffix("_tree"), k, max_model_len, options), tree=True)
    from specplug.integrations.vllm.adapter import adapter_class
    from specplug.registry import get_registry

    adapter = adapter_class(get_registry().method(name))(vllm_config(k, max_model_len, max_num_seqs, options.get(name)))
    return StepDrafter(label, lambda s, n, ids, r, p: adapter.propose(s, n, ids))


def _vllm_suffix(k: int, max_model_len: int, max_num_seqs: int, factor: float = 1.0):
    from vllm.v1.spec_decode.suffix_decoding import SuffixDecodingProposer

    proposer = SuffixDecodingProposer(vllm_config(k, max_model_len, max_num_seqs, suffix_factor=factor))

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        batch = SimpleNamespace(req_ids=list(request_ids), num_tokens_no_spec=lengths, token_ids_cpu=token_ids,
                                req_id_to_index={r: i for i, r in enumerate(request_ids)},
                                num_prompt_tokens=np.asarray(prompt_lens))
        return proposer.propose(k, batch, sampled)

    return step


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


@dataclass
class ReplayStats:
    """One request replayed through one drafter."""

    emitted: int = 0  # tokens emitted (the output's length)
    steps: int = 0  # target forwards (the prefill's included)
    drafted: int = 0
    accepted: int = 0


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
           ids: list[str] | None = None) -> list[ReplayStats]:
    """Greedy speculative decoding of each prompt in turn, in row 0; see the module docstring."""
    token_ids = np.zeros((1, max_model_len), dtype=np.int32)  # [max_num_seqs=1, max_model_len]
    out = []
    for index, (prompt, output) in enumerate(zip(prompts, outputs)):
        rid = [ids[index] if ids else f"req-{index}"]
        token_ids[0, :] = 0
        token_ids[0, : len(prompt)] = prompt
        stats = ReplayStats(emitted=1, steps=1)  # the prefill emits the first token
        if not output:
            out.append(ReplayStats())
            continue
        token_ids[0, len(prompt)] = output[0]
        n, sampled = len(prompt) + 1, [output[0]]
        while stats.emitted < len(output):
            draft = drafter.step([sampled], np.array([n], dtype=np.int32), token_ids, rid, [len(prompt)])[0]
            truth = output[stats.emitted :]
            size, acc = _accepted(draft, truth)
            commit = truth[: acc + 1]
            token_ids[0, n : n + len(commit)] = commit
            n += len(commit)
            stats.emitted += len(commit)
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


def summarize(stats: list[ReplayStats]) -> dict[str, Any]:
    total = ReplayStats()
    for s in stats:
        total.emitted += s.emitted
        total.steps += s.steps
        total.drafted += s.drafted
        total.accepted += s.accepted
    return {"prompts": len(stats), "emitted": total.emitted, "steps": total.steps, "drafted": total.drafted,
            "accepted": total.accepted, "mat": total.emitted / max(total.steps, 1),
            "acceptance": total.accepted / max(total.drafted, 1)}
