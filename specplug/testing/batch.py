"""Conformance check for :class:`~specplug.protocols.BatchProposer`: the batch call equals ``propose``.

:func:`assert_batch_matches_propose` decodes a batch of requests in lockstep twice, with two fresh
proposers: one driven row by row through ``propose``, one through ``propose_batch`` on a shared
``[rows, max_len]`` buffer, as vLLM's adapter drives it. Rows advance by random amounts, some rows
skip a step (``max_tokens`` 0), and finished rows are reused by new requests (``finish_request`` then
``start_request``), so per-request state, skipped rows and row reuse are all exercised. Every step,
every live row's batch draft must equal the first chain of the row-by-row draft.

Engine-free (numpy only); plugin tests call it with their own factory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from specplug.integrations.vllm.adapter import first_chain
from specplug.protocols import BatchProposer, ProposalRequest

__all__ = ["assert_batch_matches_propose"]


def assert_batch_matches_propose(
    build: Callable[[], object],
    sequences: Sequence[Sequence[int]],
    prompt_lens: Sequence[int],
    rows: int = 4,
    k: int = 5,
    seed: int = 0,
    skip_probability: float = 0.2,
) -> int:
    """Decode ``sequences`` (prompt + output ids) through ``rows`` reused rows; return live rows checked.

    Each sequence's first ``prompt_lens[i]`` tokens are its prompt; it is taken by the next free
    row, advances by 1 to ``k + 1`` tokens per step, and leaves its row when it reaches its end.

    :raises AssertionError: naming the step, row and both drafts at the first difference.
    """
    rng = np.random.default_rng(seed)
    by_row, batched = build(), build()
    assert isinstance(batched, BatchProposer), f"{type(batched).__name__} does not implement propose_batch"
    max_len = max(len(s) for s in sequences) + 1
    token_ids = np.zeros((rows, max_len), dtype=np.int32)  # [rows, max_len], like vLLM's token_ids_cpu
    lengths = np.zeros(rows, dtype=np.int64)
    prompt = np.zeros(rows, dtype=np.int64)
    ids: list[str | None] = [None] * rows
    owner = [-1] * rows
    waiting = list(range(len(sequences)))
    checked = step = 0
    out = np.full((rows, k), -1, dtype=np.int32)
    while waiting or any(o >= 0 for o in owner):
        for row in range(rows):  # finished rows leave, free rows take the next sequence
            if owner[row] >= 0 and lengths[row] >= len(sequences[owner[row]]):
                for p in (by_row, batched):
                    p.finish_request(ids[row])
                owner[row], ids[row] = -1, None
            if owner[row] < 0 and waiting:
                seq = waiting.pop(0)
                owner[row], ids[row] = seq, f"req-{seq}"
                token_ids[row] = 0
                token_ids[row, : len(sequences[seq])] = sequences[seq]
                prompt[row] = lengths[row] = max(1, prompt_lens[seq])
                for p in (by_row, batched):
                    p.start_request(ids[row], token_ids[row, : prompt[row]].astype(np.int64))
        live = np.array([o >= 0 and rng.random() >= skip_probability for o in owner])
        max_tokens = np.where(live, rng.integers(1, k + 1, size=rows), 0)
        out.fill(-1)
        request_ids = None if batched.stateless else [ids[r] if live[r] else None for r in range(rows)]
        counts = np.asarray(batched.propose_batch(token_ids, lengths, max_tokens, out, request_ids,
                                                  None if batched.stateless else prompt.copy()))
        for row in range(rows):
            if not live[row]:
                assert counts[row] == 0, f"step {step}: skipped row {row} got a draft of {counts[row]} tokens"
                continue
            draft = by_row.propose(ProposalRequest(ids[row], token_ids[row, : lengths[row]].astype(np.int64),
                                                   int(prompt[row]), int(max_tokens[row])))
            expected = first_chain(draft)[: max_tokens[row]].tolist()
            got = out[row, : counts[row]].tolist()
            assert got == expected, f"step {step}, row {row} ({ids[row]}): propose_batch {got}, propose {expected}"
            assert np.all(out[row, counts[row]:] == -1), f"step {step}, row {row}: cells past the count were written"
            checked += 1
        seqs = [len(sequences[o]) if o >= 0 else 0 for o in owner]
        lengths = np.where(live, np.minimum(lengths + rng.integers(1, k + 2, size=rows), seqs), lengths)
        step += 1
    return checked
