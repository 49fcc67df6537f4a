"""The level 1 adapter driven the way vLLM 0.32 drives a custom_class proposer, with plain configs.

These tests need neither vLLM nor a model: like vLLM's own test_custom_class_proposer.py, they build
the config from SimpleNamespace and call ``propose`` with the arrays vLLM passes.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import Field

from specplug.integrations.vllm.adapter import SpecplugConfigError, adapter_class, first_chain
from specplug.methods import MethodOptions, MethodSpec, OptionsError
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest

MAX_SEQS, MAX_LEN = 4, 32


class EchoOptions(MethodOptions):
    step: int = Field(1, ge=1, description="added to each drafted token")


class EchoProposer(BaseProposer):
    """Drafts root+step, root+2*step, ... and records every call."""

    def __init__(self, options: EchoOptions):
        self.step = options.step
        self.events: list[tuple] = []
        self.requests: list[ProposalRequest] = []

    def start_request(self, request_id, prompt_ids):
        self.events.append(("start", request_id, prompt_ids.tolist()))

    def finish_request(self, request_id):
        self.events.append(("finish", request_id))

    def observe(self, feedback):
        self.events.append(("observe", feedback.request_id))

    def propose(self, request):
        self.requests.append(request)
        root = int(request.token_ids[-1])
        return Draft.chain([root + self.step * (i + 1) for i in range(request.max_tokens)])


def make(spec_kwargs=None, k=3, max_len=MAX_LEN, options=None, vocab=1000):
    spec = MethodSpec(id="echo", factory=EchoProposer, options=EchoOptions, **(spec_kwargs or {}))
    config = SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=k),
        model_config=SimpleNamespace(max_model_len=max_len, get_vocab_size=lambda: vocab),
        additional_config={"specplug": {"options": options}} if options is not None else {},
    )
    return adapter_class(spec)(config)


def batch(rows: list[list[int]]):
    """vLLM's arrays for rows holding these committed tokens."""
    tokens = np.zeros((MAX_SEQS, MAX_LEN), dtype=np.int32)
    lengths = np.zeros(MAX_SEQS, dtype=np.int32)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
        lengths[i] = len(row)
    return tokens, lengths


def test_drafts_k_tokens_per_row_and_skips_rows_without_samples():
    drafter = make(k=3)
    drafter.load_model(object())  # vLLM on CPU calls it unconditionally
    tokens, lengths = batch([[5, 6, 7], [1, 2], [9]])
    out = drafter.propose([[7], [], [9]], lengths, tokens)
    assert out == [[8, 9, 10], [], [10, 11, 12]]
    req = drafter.proposer.requests[0]
    assert req.token_ids.tolist() == [5, 6, 7] and req.max_tokens == 3 and req.num_prompt_tokens == 2
    assert np.shares_memory(req.token_ids, tokens)  # a view of vLLM's array, not a copy


def test_options_from_additional_config_are_used():
    drafter = make(options={"step": 10})
    tokens, lengths = batch([[1, 2]])
    assert drafter.propose([[2]], lengths, tokens) == [[12, 22, 32]]


def test_never_drafts_past_max_model_len():
    drafter = make(k=4, max_len=10)
    tokens, lengths = batch([list(range(7)), list(range(9)), list(range(10))])
    out = drafter.propose([[6], [8], [9]], lengths, tokens)
    # 7 tokens: room for 10 - 7 - 1 = 2 drafts; 9 tokens: none; full: none
    assert out == [[7, 8], [], []]


def test_row_reuse_and_moves_give_start_and_finish_pairs():
    drafter = make(k=1)
    events = drafter.proposer.events
    a, b = [1, 2, 3], [7, 8]
    tokens, lengths = batch([a, b])
    drafter.propose([[3], [8]], lengths, tokens)
    assert [e[0] for e in events] == ["start", "start"]
    id_a, id_b = events[0][1], events[1][1]
    assert events[0][2] == [1, 2]  # prompt = committed tokens minus the sampled one

    # both grow: same requests, no events
    tokens, lengths = batch([a + [4, 5], b + [9]])
    drafter.propose([[4, 5], [9]], lengths, tokens)
    assert len(events) == 2

    # row 0 finishes, vLLM condenses: b moves to row 0; a new request c starts in row 1
    c = [4, 4, 4]
    tokens, lengths = batch([b + [9, 10], c])
    drafter.propose([[10], [4]], lengths, tokens)
    assert ("finish", id_a) in events and ("finish", id_b) not in events
    new = [e for e in events[2:] if e[0] == "start"]
    assert len(new) == 1 and new[0][2] == [4, 4]
    # b kept its id after the move: its draft request carries id_b
    assert drafter.proposer.requests[-2].request_id == id_b

    # a row whose history shrank is a new request even with the same prompt start
    tokens, lengths = batch([b[:1] + [99], c + [4]])
    drafter.propose([[99], [4]], lengths, tokens)
    assert ("finish", id_b) in events

    # rows past the batch end are finished
    tokens, lengths = batch([b[:1] + [99, 5]])
    drafter.propose([[5]], lengths, tokens)
    assert sum(e[0] == "finish" for e in events) == 3


class Broken(BaseProposer):
    def __init__(self, options):
        pass

    def propose(self, request):
        if request.token_ids[-1] == 13:
            raise RuntimeError("unlucky")
        if request.token_ids[-1] == 14:
            return Draft.chain([10**6])  # outside the vocabulary
        return Draft.chain([1, 2, 3, 4, 5, 6])  # more than asked


def test_a_raising_proposer_gives_empty_drafts_and_one_warning(caplog):
    spec = MethodSpec(id="broken", factory=Broken)
    config = SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=2),
        model_config=SimpleNamespace(max_model_len=MAX_LEN, get_vocab_size=lambda: 100),
        additional_config={},
    )
    drafter = adapter_class(spec)(config)
    tokens, lengths = batch([[13], [14], [5]])
    with caplog.at_level(logging.WARNING, logger="specplug.vllm"):
        out = drafter.propose([[13], [14], [5]], lengths, tokens)
        drafter.propose([[13], [14], [5]], lengths, tokens)
    assert out == [[], [], [1, 2]]
    warnings = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(warnings) == 1 and "unlucky" in warnings[0].getMessage()


def test_tree_drafts_are_cut_to_the_first_chain():
    draft = Draft(np.array([10, 11, 12, 13]), parents=np.array([-1, 0, -1, 1]))
    assert first_chain(draft).tolist() == [10, 11, 13]
    assert first_chain(Draft.chain([1, 2])).tolist() == [1, 2]
    assert first_chain(Draft.empty()).tolist() == []


def test_bad_options_fail_at_start_naming_the_key_and_the_way_in():
    with pytest.raises(OptionsError, match=r"step.*additional-config"):
        make(options={"step": 0})
    with pytest.raises(OptionsError, match="stepp"):
        make(options={"stepp": 2})


def test_k_beyond_max_k_fails_at_start():
    with pytest.raises(SpecplugConfigError, match=r"at most 2 .* num_speculative_tokens <= 2"):
        make(spec_kwargs={"max_k": 2}, k=5)


def test_level2_need_without_level2_names_the_env_var():
    with pytest.raises(SpecplugConfigError, match="SPECPLUG_VLLM_LEVEL2=1"):
        make(spec_kwargs={"needs": frozenset({Need.target_topk})})


def test_module_getattr_defers_resolution_and_reports_unknown_ids(monkeypatch):
    import specplug.vllm as sv
    from specplug import registry

    cls = sv.no_such_method_xyz
    assert cls.__name__ == "no_such_method_xyz"
    with pytest.raises(AttributeError):
        sv.__wrapped__  # dunder lookups (pytest, inspect) are plain misses

    class FakeRegistry:
        def method(self, wanted):
            raise registry.UnknownIdError("method", wanted, ["pld"])

    monkeypatch.setattr(registry, "get_registry", lambda: FakeRegistry())
    with pytest.raises(KeyError, match=r"Did you mean: pld"):
        cls(SimpleNamespace())


def test_reuse_is_detected_when_prompts_share_a_long_system_prompt():
    """Chat prompts start alike; the fingerprint uses the prompt's end, so a new request is still seen."""
    drafter = make(k=1, max_len=256)
    system = list(range(1, 101))  # 100 shared tokens, more than the fingerprint window
    tokens = np.zeros((MAX_SEQS, 256), dtype=np.int32)
    lengths = np.zeros(MAX_SEQS, dtype=np.int32)
    first = system + [500, 501, 7]
    tokens[0, : len(first)], lengths[0] = first, len(first)
    drafter.propose([[7]], lengths, tokens)
    second = system + [600, 601, 602, 603, 8]  # longer than the first: the length alone would not tell
    tokens[0, : len(second)], lengths[0] = second, len(second)
    drafter.propose([[8]], lengths, tokens)
    kinds = [e[0] for e in drafter.proposer.events]
    assert kinds == ["start", "start", "finish"] or kinds == ["start", "finish", "start"]


def test_level2_binds_real_ids_and_finishes_each_started_request_once():
    """The public methods level 2's patches call, driven as the patched model runner drives them."""
    from specplug.protocols import StepFeedback

    drafter = make(k=2)
    events = drafter.proposer.events
    tokens, lengths = batch([[5, 6, 7], [1, 2]])
    drafter.bind_batch(["req-a", "req-b", None, None], np.array([2, 1, 0, 0]))
    assert drafter.propose([[7], [2]], lengths, tokens) == [[8, 9], [3, 4]]
    assert events == [("start", "req-a", [5, 6]), ("start", "req-b", [1])]  # real ids, prompt lengths from vLLM
    assert [r.request_id for r in drafter.proposer.requests] == ["req-a", "req-b"]
    assert drafter.is_live("req-a") and not drafter.is_live("req-c")

    drafter.observe(StepFeedback("req-a", Draft.chain([8, 9]), [0], [8, 9]))
    drafter.observe(StepFeedback("req-c", Draft.empty(), [], [1]))  # never started: not the proposer's business
    assert events[2:] == [("observe", "req-a")]

    assert drafter.finish_requests(["req-a", "req-c", "req-a"]) == ["req-a"]
    assert drafter.finish_requests(["req-a"]) == []  # finished once
    assert events[-1] == ("finish", "req-a") and sum(e[0] == "finish" for e in events) == 1
    assert not drafter.is_live("req-a") and drafter.is_live("req-b")
    drafter.observe(StepFeedback("req-a", Draft.empty(), [], [1]))  # finished: no more feedback
    assert sum(e[0] == "observe" for e in events) == 1
