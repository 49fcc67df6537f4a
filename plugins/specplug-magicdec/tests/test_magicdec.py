"""Tests of specplug-magicdec: the StreamingLLM cache, the engine's own cache left untouched, bad budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.protocols import ProposalRequest, TargetInfo
from specplug_magicdec import MagicDecOptions, MagicDecProposer, streaming_positions


def test_streaming_positions_keep_sinks_and_the_recent_window():
    assert streaming_positions(10, 2, 5).tolist() == [0, 1, 7, 8, 9]
    assert streaming_positions(5, 2, 5).tolist() == [0, 1, 2, 3, 4]
    assert streaming_positions(100, 0, 3).tolist() == [97, 98, 99]


def _model():
    from specplug.testing.models import tiny_llama

    return tiny_llama(vocab_size=128, seed=2, max_positions=512)


def test_the_draft_reads_only_its_budget_and_never_touches_the_targets_cache():
    """The engine's full cache (a TargetModel over the same model object) is bit-identical before and after
    the proposer drafts; the draft's own cache holds sinks + window only, at their true positions."""
    from specplug.kit.target import TargetModel

    model = _model()
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 128, size=200).tolist()
    target = TargetModel(model)
    target.forward(prompt)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in target._layers()]

    proposer = MagicDecProposer(MagicDecOptions(kv_budget=32, sinks=4))
    proposer.bind_target(TargetInfo(vocab_size=128, model=model))
    tokens = list(prompt)
    for step in range(3):
        draft = proposer.propose(ProposalRequest("r", np.array(tokens), len(prompt), 4))
        assert len(draft) == 4
        cache = proposer.cache
        assert cache.mark == 32  # cut to the budget before drafting
        assert cache.positions[:4] == [0, 1, 2, 3] and cache.positions[4:32] == list(range(len(tokens) - 28, len(tokens)))
        tokens += draft.token_ids[:2].tolist() + [int(rng.integers(0, 128))]

    after = target._layers()
    assert target.cache_len == len(prompt)
    for (k0, v0), layer in zip(before, after):
        assert torch.equal(k0, layer.keys) and torch.equal(v0, layer.values)


def test_with_a_budget_above_the_context_the_draft_is_the_target_itself():
    """Budget larger than the text: nothing is evicted, so the greedy draft equals the target's own greedy
    continuation (the sparse cache is the only difference between draft and target)."""
    from specplug.engine import ReferenceEngine

    model = _model()
    prompt = [5, 9, 17, 33, 2, 5, 9]
    plain = ReferenceEngine(model).generate([prompt], max_new_tokens=5)[0].token_ids
    proposer = MagicDecProposer(MagicDecOptions(kv_budget=256, sinks=4))
    proposer.bind_target(TargetInfo(vocab_size=128, model=model))
    assert proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 4)).token_ids.tolist() == plain[:4]


@pytest.mark.parametrize("options, message", [
    ({"kv_budget": 0}, "kv_budget"),
    ({"kv_budget": 8, "sinks": 8}, "sinks (8) must be smaller than kv_budget (8)"),
])
def test_bad_budgets_are_refused(options, message):
    from specplug.registry import get_registry

    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_registry().method("magicdec").build(options)


def test_a_window_as_large_as_the_context_is_refused():
    proposer = MagicDecProposer(MagicDecOptions(kv_budget=512, sinks=4))
    with pytest.raises(ValueError, match="not smaller than the model's context"):
        proposer.bind_target(TargetInfo(vocab_size=128, model=_model()))


def test_state_is_dropped_when_the_request_ends():
    model = _model()
    proposer = MagicDecProposer(MagicDecOptions(kv_budget=16, sinks=2))
    proposer.bind_target(TargetInfo(vocab_size=128, model=model))
    proposer.start_request("a", np.arange(40))
    proposer.propose(ProposalRequest("a", np.arange(40), 40, 3))
    assert proposer.cache is not None
    proposer.finish_request("a")
    assert proposer.cache is None and proposer.request_id is None
