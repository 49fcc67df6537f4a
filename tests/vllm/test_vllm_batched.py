"""The adapter's batched path (``BatchProposer.propose_batch``) against its per-row path.

Driven as vLLM 0.32 drives a custom_class proposer (plain configs, no vLLM, no model): a decode of
several requests through few rows, rows reused by new requests and condensed (vLLM moves the last
row into a freed one). The batched adapter must hand vLLM exactly the drafts of the per-row adapter,
and it must start and finish the same synthetic requests. Losslessness inside a real vLLM engine is
covered by each plugin's engine tests (``MethodEngineConformance``), which go through this path.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from specplug.integrations.vllm.adapter import adapter_class
from specplug.methods import MethodSpec
from specplug.protocols import BaseProposer, Draft
from specplug.registry import get_registry

K, MAX_LEN = 5, 512


def config(options=None, k=K, max_len=MAX_LEN):
    return SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=k),
        model_config=SimpleNamespace(max_model_len=max_len, get_vocab_size=lambda: 64),
        additional_config={"specplug": {"options": options or {}}},
    )


def workload(seed: int, n: int = 10) -> list[tuple[list[int], int]]:
    """``(prompt + output, prompt length)`` pairs that share spans, so n-gram drafts get made."""
    rng = np.random.default_rng(seed)
    shared = rng.integers(0, 40, size=60).tolist()
    out = []
    for _ in range(n):
        prompt = shared[: int(rng.integers(10, 40))] + rng.integers(0, 40, size=8).tolist()
        output = shared[int(rng.integers(0, 20)) :][: int(rng.integers(20, 60))] + rng.integers(0, 40, size=10).tolist()
        out.append((prompt + output, len(prompt)))
    return out


def decode(adapter, requests, rows: int, seed: int):
    """Feed ``adapter.propose`` as vLLM does; returns every step's drafts.

    The committed tokens come from the given outputs (greedy decoding makes them independent of
    the drafts); each step a row emits 1 to K + 1 tokens. A finished row is refilled with the next
    request, or else the last row is moved into it (vLLM's condense).
    """
    rng = np.random.default_rng(seed)
    token_ids = np.zeros((rows, MAX_LEN), dtype=np.int32)
    lengths = np.zeros(rows, dtype=np.int32)
    owner = [-1] * rows
    waiting = list(range(len(requests)))
    batch = 0
    steps = []
    while waiting or batch:
        for row in range(rows):
            if row < batch and owner[row] >= 0 and lengths[row] >= len(requests[owner[row]][0]):
                owner[row] = -1
        # condense: the last live row moves into the first hole
        live = [r for r in range(batch) if owner[r] >= 0]
        while waiting and len(live) < rows:
            index = waiting.pop(0)
            seq, prompt = requests[index]
            row = next(r for r in range(rows) if r not in live)
            token_ids[row] = 0
            token_ids[row, : len(seq)] = seq
            lengths[row] = prompt + 1  # the prefill step emits one token
            owner[row] = index
            live.append(row)
        live.sort()
        for hole in range(len(live)):
            if live[hole] != hole:  # move the last row into the hole
                src = live.pop()
                token_ids[hole], lengths[hole], owner[hole] = token_ids[src], lengths[src], owner[src]
                owner[src] = -1
                live.insert(hole, hole)
        batch = len(live)
        if not batch:
            break
        sampled = [[1] * int(rng.integers(1, 3)) if rng.random() > 0.1 else [] for _ in range(batch)]
        steps.append(adapter.propose(sampled, lengths.copy(), token_ids))
        grow = rng.integers(1, K + 2, size=batch)
        for r in range(batch):
            if sampled[r]:
                lengths[r] = min(lengths[r] + grow[r], len(requests[owner[r]][0]))
    return steps


@pytest.mark.parametrize("method", ["pld", "anpd", "suffix"])
@pytest.mark.parametrize("rows", [1, 4])
def test_batched_path_gives_the_per_row_drafts(method, rows):
    spec = get_registry().method(method)
    batched, per_row = adapter_class(spec)(config()), adapter_class(spec)(config())
    assert batched.batched
    per_row.batched = False  # the per-row path, as for any proposer without propose_batch
    requests = workload(seed=rows)
    got, expected = decode(batched, requests, rows, seed=1), decode(per_row, requests, rows, seed=1)
    assert got == expected
    assert sum(len(d) for step in got for d in step) > 20, "no drafts at all: the comparison would be empty"


def test_stateless_proposers_skip_row_tracking():
    adapter = adapter_class(get_registry().method("pld"))(config())
    decode(adapter, workload(seed=2), 4, seed=2)
    assert adapter.tracker.rows == {}


class Lifecycle(BaseProposer):
    """A stateful batch proposer that records its lifecycle and drafts its request's prompt length."""

    stateless = False

    def __init__(self, options=None):
        self.events: list[tuple[str, str]] = []

    def start_request(self, request_id, prompt_ids):
        self.events.append(("start", request_id))

    def finish_request(self, request_id):
        self.events.append(("finish", request_id))

    def propose(self, request):
        return Draft.chain([request.num_prompt_tokens % 64])

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None):
        counts = np.zeros(len(lengths), np.int32)
        for row in np.flatnonzero(np.asarray(max_tokens) > 0):
            assert request_ids[row] is not None
            out[row, 0] = num_prompt_tokens[row] % 64
            counts[row] = 1
        return counts


def test_stateful_batch_proposers_see_the_same_lifecycle_as_per_row():
    spec = MethodSpec(id="lifecycle", factory=Lifecycle)
    batched, per_row = adapter_class(spec)(config()), adapter_class(spec)(config())
    per_row.batched = False
    requests = workload(seed=3, n=12)
    assert decode(batched, requests, 4, seed=3) == decode(per_row, requests, 4, seed=3)
    assert batched.proposer.events == per_row.proposer.events
    assert sum(e[0] == "start" for e in batched.proposer.events) == 12


class Broken(Lifecycle):
    stateless = True

    def propose_batch(self, *args, **kwargs):
        raise RuntimeError("boom")


class OutOfVocab(Lifecycle):
    stateless = True

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None):
        out[:, 0] = np.arange(len(lengths)) * 1000  # row 0 is fine (token 0), the others are not
        return np.ones(len(lengths), np.int32)


def test_a_raising_or_out_of_vocabulary_batch_proposer_costs_drafts_not_the_engine(caplog):
    broken = adapter_class(MethodSpec(id="broken", factory=Broken))(config())
    sampled, lengths = [[1], [1]], np.array([10, 12], np.int32)
    tokens = np.ones((2, MAX_LEN), np.int32)
    with caplog.at_level("WARNING", logger="specplug.vllm"):
        assert broken.propose(sampled, lengths, tokens) == [[], []]
        assert broken.propose(sampled, lengths, tokens) == [[], []]
    assert sum("raised in propose_batch" in r.message for r in caplog.records) == 1
    bad = adapter_class(MethodSpec(id="oov", factory=OutOfVocab))(config())
    assert bad.propose(sampled, lengths, tokens) == [[0], []]
