"""The model-drafter contract in the reference engine, and the shared torch helpers (engine/drafting.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.engine import ReferenceEngine
from specplug.kit.drafting import DraftCache, ReducedVocab, draft_chain, model_view
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, SamplingParams, TargetInfo
from specplug.testing import examples, tiny_llama


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=96, seed=3, num_layers=4)


def full_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def test_a_view_with_every_layer_is_the_model_and_shares_its_weights(model):
    view = model_view(model, keep_layers=range(4))
    ids = [3, 8, 1, 44, 7]
    assert torch.allclose(full_logits(view, ids), full_logits(model, ids), atol=1e-5)
    assert view.model.layers[2].mlp.up_proj.weight.data_ptr() == model.model.layers[2].mlp.up_proj.weight.data_ptr()
    assert model.config.num_hidden_layers == 4 and model.model.layers[3].self_attn.layer_idx == 3


def test_a_layer_skip_view_runs_only_its_layers_and_leaves_the_model_alone(model):
    before = full_logits(model, [5, 6, 7])
    view = model_view(model, keep_layers=[0, 3])
    assert view.config.num_hidden_layers == 2 and [l.self_attn.layer_idx for l in view.model.layers] == [0, 1]
    # the same computation by hand: embeddings -> layer 0 -> layer 3 -> norm -> head
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        h = model.model.embed_tokens(ids)
        pos = torch.arange(3)[None]
        emb = model.model.rotary_emb(h, position_ids=pos)
        mask = torch.full((3, 3), float("-inf")).triu(1)[None, None]
        for i in (0, 3):
            h = model.model.layers[i](h, attention_mask=mask, position_embeddings=emb, position_ids=pos)
        expected = model.lm_head(model.model.norm(h))[0]
    assert torch.allclose(full_logits(view, [5, 6, 7]), expected, atol=1e-5)
    assert torch.equal(full_logits(model, [5, 6, 7]), before)


def test_a_reduced_head_scores_exactly_the_reduced_rows(model):
    vocab = ReducedVocab.most_frequent([[1, 1, 2, 5, 5, 5, 9]], size=3, vocab_size=96, always=[0])
    assert vocab.token_ids.tolist() == [0, 1, 2, 5]
    view = model_view(model, vocab=vocab)
    assert torch.allclose(full_logits(view, [4, 2]), full_logits(model, [4, 2])[:, [0, 1, 2, 5]], atol=1e-5)
    expanded = vocab.expand(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert expanded.shape == (96,) and float(expanded[5]) == pytest.approx(0.4) and float(expanded.sum()) == pytest.approx(1.0)


def test_bad_layer_ids_and_vocabularies_are_clear_errors(model):
    with pytest.raises(ValueError, match=r"distinct ids in \[0, 4\)"):
        model_view(model, keep_layers=[0, 4])
    with pytest.raises(ValueError, match="at least one token"):
        ReducedVocab(np.zeros(0, dtype=np.int64), 96)
    with pytest.raises(ValueError, match=r"\[0, 96\)"):
        ReducedVocab(np.array([3, 200]), 96)


@settings(max_examples=examples(25), deadline=None)
@given(
    prompt=st.lists(st.integers(0, 95), min_size=1, max_size=6),
    drafted=st.lists(st.integers(0, 95), min_size=0, max_size=5),
    accepted=st.integers(0, 5),
    bonus=st.integers(0, 95),
)
def test_draft_cache_rolls_back_to_what_is_still_committed(model, prompt, drafted, accepted, bonus):
    cache = DraftCache(model)
    cache.sync(prompt)
    if drafted:
        cache.feed(drafted)  # the drafter fed its guesses
    committed = prompt + drafted[: min(accepted, len(drafted))] + [bonus]  # accept none, some or all
    logits = cache.sync(committed)
    assert cache.tokens == committed and cache.lm.cache_len == len(committed)
    assert torch.allclose(logits, full_logits(model, committed)[-1], atol=1e-3)


def test_greedy_chains_are_deterministic_and_sampled_chains_carry_q(model):
    cache = DraftCache(model)
    greedy = draft_chain(cache, [1, 2, 3], k=4)
    assert len(greedy) == 4 and greedy.probs is None
    expected, ids = [], [1, 2, 3]
    for _ in range(4):
        expected.append(int(full_logits(model, ids)[-1].argmax()))
        ids.append(expected[-1])
    assert greedy.token_ids.tolist() == expected
    sampled = draft_chain(cache, [1, 2, 3], k=3, sampling=SamplingParams(temperature=1.0), generator=torch.Generator().manual_seed(0))
    q = torch.as_tensor(sampled.probs)
    assert q.shape == (3, 96) and torch.allclose(q.sum(-1), torch.ones(3))
    assert all(float(q[i, t]) > 0 for i, t in enumerate(sampled.token_ids.tolist()))


def test_a_confidence_threshold_shortens_the_chain(model):
    assert len(draft_chain(DraftCache(model), [1, 2, 3], k=4, stop_below=1.01)) == 0
    assert len(draft_chain(DraftCache(model), [1, 2, 3], k=4, stop_below=0.0)) == 4


class StateRecorder(BaseProposer):
    """Drafts nothing useful; records what the engine hands over."""

    needs = frozenset({Need.target_hidden_states, Need.target_model})

    def __init__(self, layers=(0, 2, -1)):
        self.hidden_state_layers = layers
        self.bound: TargetInfo | None = None
        self.seen: list[tuple[int, torch.Tensor, np.ndarray]] = []

    def bind_target(self, info):
        self.bound = info

    def propose(self, request: ProposalRequest) -> Draft:
        if request.hidden_states is not None:
            self.seen.append((request.hidden_start, request.hidden_states.clone(), request.token_ids.copy()))
        # guess the last committed token again: sometimes right on a repetitive prompt
        return Draft.chain([int(request.token_ids[-1])] * request.max_tokens)


def test_the_engine_hands_every_committed_state_over_once_and_in_order(model):
    engine = ReferenceEngine(model)
    prompt = [7, 7, 7, 3, 7, 7]
    recorder = StateRecorder()
    out = engine.generate([prompt], recorder, k=3, max_new_tokens=12)[0]
    plain = engine.generate([prompt], None, max_new_tokens=12)[0]
    assert out.token_ids == plain.token_ids
    assert recorder.bound is not None and recorder.bound.model is model and recorder.bound.vocab_size == 96
    starts = [s for s, _, _ in recorder.seen]
    assert starts[0] == 0
    got = torch.cat([h for _, h, _ in recorder.seen])  # [positions, 3, hidden]
    last_ids = recorder.seen[-1][2]
    assert got.shape[0] == len(last_ids) - 1  # every committed position but the root
    for (start, states, ids), nxt in zip(recorder.seen, starts[1:] + [got.shape[0]]):
        assert start + states.shape[0] == nxt == len(ids) - 1
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor([last_ids.tolist()]), output_hidden_states=True).hidden_states
    for j, layer in enumerate((0, 2, -1)):
        assert torch.allclose(got[:, j], ref[layer][0, :-1], rtol=1e-4, atol=1e-3)


def test_a_hidden_state_drafter_without_layers_is_refused(model):
    with pytest.raises(ValueError, match="hidden_state_layers"):
        ReferenceEngine(model).generate([[1, 2]], StateRecorder(layers=()), max_new_tokens=3)
    with pytest.raises(ValueError, match="does not exist"):
        ReferenceEngine(model).generate([[1, 2]], StateRecorder(layers=(9,)), max_new_tokens=3)
