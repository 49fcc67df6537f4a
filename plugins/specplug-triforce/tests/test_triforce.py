"""Tests of specplug-triforce: chunk retrieval, the hierarchy, the engine's cache left untouched, sampling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.engine import ReferenceEngine
from specplug.protocols import Draft, ProposalRequest, SamplingParams, TargetInfo
from specplug.registry import get_registry
from specplug.testing.models import tiny_llama
from specplug.verify.sampling import process_logits
from specplug_triforce import TriForceOptions, TriForceProposer
from specplug_triforce.retrieval import RetrievalCache, chunk_scores, retrieved_positions, select_chunks


def build(options):
    return get_registry().method("triforce").build(options)


def _model(**kw):
    return tiny_llama(**{"vocab_size": 128, "seed": 2, "max_positions": 512, **kw})


def _bound(options, model):
    proposer = TriForceProposer(TriForceOptions(**options))
    proposer.bind_target(TargetInfo(vocab_size=model.config.vocab_size, num_layers=model.config.num_hidden_layers, model=model))
    return proposer


# -- retrieval ---------------------------------------------------------------------------------------
def test_selection_keeps_the_first_chunk_and_the_best_scoring_ones_not_the_latest():
    """Two KV heads, six chunks of 2: head 0's query points at chunk 2, head 1's at chunk 4 and then 1; the
    latest chunks point away. A recency rule (StreamingLLM's) would keep chunks 4 and 5 for both heads."""
    dim, chunk = 4, 2
    query = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])  # one query head per KV head
    keys = torch.zeros(2, 13, dim)  # 6 whole chunks + 1 trailing position
    keys[0, 4:6, 0] = 3.0  # head 0: chunk 2
    keys[0, 2:4, 0] = 1.0  # head 0: chunk 1, second
    keys[1, 8:10, 1] = 3.0  # head 1: chunk 4
    keys[1, 2:4, 1] = 2.0  # head 1: chunk 1, second
    keys[:, 10:12, :2] = -5.0  # chunk 5, the latest whole chunk: pointing away for both
    scores = chunk_scores(query, keys, chunk)
    assert scores.shape == (2, 6)
    chosen = select_chunks(scores, 3)
    assert chosen.tolist() == [[0, 1, 2], [0, 1, 4]]
    assert retrieved_positions(chosen, chunk, 13).tolist() == [[0, 1, 2, 3, 4, 5, 12], [0, 1, 2, 3, 8, 9, 12]]


def test_a_kv_heads_score_is_the_mean_over_its_query_heads():
    query = torch.tensor([[1.0, 0], [0, 3.0]])  # two query heads share one KV head
    keys = torch.tensor([[[2.0, 0], [2.0, 0], [0, 1.0], [0, 1.0]]])  # chunk 0 -> head a: 2; chunk 1 -> head b: 3
    assert chunk_scores(query, keys, 2).tolist() == [[1.0, 1.5]]


def test_the_retrieval_cache_keeps_the_chunks_the_models_own_attention_ranks_highest():
    """Independent check on a real (tiny) model: eager attention's weights at the last prompt position, averaged
    per chunk in log space and over each KV head's query heads, rank chunks as q . mean(k) does (log-softmax only
    shifts a head's logits by a constant). The retrieved keys are the full cache's own, bit for bit."""
    model = _model(num_layers=2, num_heads=4, num_kv_heads=2)
    prompt = np.random.default_rng(3).integers(0, 128, size=41).tolist()  # context 40 = 10 chunks of 4
    cache = RetrievalCache(model, budget=16, chunk_size=4)
    cache.build(prompt)
    assert cache.base == 16 and len(cache.selected) == 2  # 4 chunks of 4 per head, per layer

    implementation = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([prompt]), output_attentions=True, use_cache=True)
    finally:
        model.config._attn_implementation = implementation
    for layer, (weights, chosen) in enumerate(zip(out.attentions, cache.selected)):
        logw = weights[0, :, -1, :40].log()  # [heads, 40]: the root over the context
        per_chunk = logw.reshape(4, 10, 4).mean(-1).reshape(2, 2, 10).mean(1)  # [kv heads, chunks]
        expected = [sorted([0] + (torch.topk(row[1:], 3).indices + 1).tolist()) for row in per_chunk]
        assert chosen.tolist() == expected, f"layer {layer}"
        full_keys = out.past_key_values.layers[layer].keys[0, :, :40]  # [kv heads, 40, d]
        kept = torch.stack([full_keys[h, retrieved_positions(chosen, 4, 40)[h]] for h in range(2)])
        assert torch.allclose(cache.lm._layers()[layer].keys[0], kept, atol=1e-5)
    # a recency rule would have kept the latest chunks; the selection here differs from it somewhere
    assert any(sel.tolist() != [[0, 7, 8, 9]] * 2 for sel in cache.selected)


# -- the hierarchy ----------------------------------------------------------------------------------
def test_the_middle_levels_tokens_do_not_depend_on_the_small_draft():
    """Level 2 verifies level 1 exactly, so the draft handed to the full target is the target-over-retrieval-cache's
    own greedy chain whichever small draft proposed it; the small draft only changes how many of its tokens
    were accepted on the way (all of them when the small draft is the middle level itself)."""
    model = _model(num_layers=3)
    prompt = np.random.default_rng(5).integers(0, 128, size=70).tolist()
    drafts = []
    for layers in ("0", "0,1,2", "2"):
        proposer = _bound({"layers": layers, "kv_budget": 24, "chunk_size": 4}, model)
        drafts.append(proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 8)).token_ids.tolist())
    assert drafts[0] == drafts[1] == drafts[2] and len(drafts[0]) == 8
    # a budget above the prompt: the middle level is the target, and so is a full-depth small draft with a full window
    same = _bound({"layers": "0,1,2", "kv_budget": 256, "chunk_size": 4}, model)
    same.propose(ProposalRequest("r", np.array(prompt), len(prompt), 8))
    assert same.counts.draft_accepted == same.counts.draft_tokens > 0


def test_with_a_budget_above_the_context_the_middle_level_is_the_target_itself():
    model = _model()
    prompt = [5, 9, 17, 33, 2, 5, 9]
    plain = ReferenceEngine(model).generate([prompt], max_new_tokens=6)[0].token_ids
    proposer = _bound({"layers": "0", "kv_budget": 256, "chunk_size": 8}, model)
    assert proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 5)).token_ids.tolist() == plain[:5]


def test_the_draft_never_touches_the_targets_cache_and_reads_only_its_budget():
    """The engine's full cache (a TargetModel over the same model object) is bit-identical before and after the
    proposer drafts; the middle level's prompt region is the budget, and later tokens follow at true positions."""
    from specplug.kit.target import TargetModel

    model = _model()
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 128, size=200).tolist()
    target = TargetModel(model)
    target.forward(prompt)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in target._layers()]

    proposer = _bound({"layers": "0", "kv_budget": 32, "chunk_size": 8, "draft_kv_budget": 24, "draft_sinks": 4}, model)
    tokens = list(prompt)
    for step in range(3):
        draft = proposer.propose(ProposalRequest("r", np.array(tokens), len(prompt), 4))
        assert len(draft) == 4
        middle = proposer.middle
        assert middle.base <= 32 and middle.lm.cache_len == middle.base + len(middle.tokens) - (len(prompt) - 1)
        assert proposer.draft.mark <= 24
        tokens += draft.token_ids[:2].tolist() + [int(rng.integers(0, 128))]

    after = target._layers()
    assert target.cache_len == len(prompt)
    for (k0, v0), layer in zip(before, after):
        assert torch.equal(k0, layer.keys) and torch.equal(v0, layer.values)


def test_state_is_dropped_when_the_request_ends():
    proposer = _bound({"layers": "0", "kv_budget": 16, "chunk_size": 4}, _model())
    proposer.start_request("a", np.arange(40))
    proposer.propose(ProposalRequest("a", np.arange(40), 40, 3))
    assert proposer.middle is not None and proposer.draft is not None
    proposer.finish_request("a")
    assert proposer.middle is None and proposer.draft is None and proposer.request_id is None


# -- sampling ---------------------------------------------------------------------------------------
VOCAB = 6
PROMPT = [1, 4, 2, 5, 3, 0, 1, 2, 4, 4, 5, 1, 0, 3, 2, 2, 5, 4]  # 17 context positions > kv_budget 6


def _target():
    return tiny_llama(vocab_size=VOCAB, seed=11, num_layers=3, init_std=0.35)


def _expected_joint(model, sampling: SamplingParams) -> np.ndarray:
    """The target's own distribution of the first two sampled tokens after PROMPT ([V * V])."""
    with torch.inference_mode():
        p0 = process_logits(model(input_ids=torch.tensor([PROMPT])).logits[0, -1:].float(), sampling)[0]
        rows = model(input_ids=torch.tensor([PROMPT + [t] for t in range(VOCAB)])).logits[:, -1].float()
        p1 = process_logits(rows, sampling)
    return (p0[:, None] * p1).reshape(-1).numpy().astype(np.float64)


def _pvalue(model, proposer, sampling: SamplingParams, draws: int) -> float:
    engine = ReferenceEngine(model, eos_token_id=[])
    results = engine.generate([PROMPT] * draws, proposer, "speculative_sampling", k=2, max_new_tokens=3, sampling=sampling)
    counts = np.zeros(VOCAB * VOCAB)
    for r in results:
        counts[r.token_ids[0] * VOCAB + r.token_ids[1]] += 1
    expected = _expected_joint(model, sampling)
    keep = expected > 1e-12
    assert counts[~keep].sum() == 0, "emitted a pair the target gives probability 0"
    return float(chisquare(counts[keep], expected[keep] / expected[keep].sum() * counts.sum()).pvalue)


OPTIONS = {"layers": "0", "kv_budget": 6, "chunk_size": 2, "draft_k": 1, "draft_kv_budget": 4, "draft_sinks": 1}


@pytest.mark.slow  # about 10 s: a thousand short requests
def test_sampled_output_is_distributed_as_the_target():
    torch.manual_seed(0)
    model = _target()
    assert _pvalue(model, build(OPTIONS), SamplingParams(temperature=1.0), draws=1000) > 1e-3


class _DraftModelQ(TriForceProposer):
    """Reports a uniform q instead of the middle level's distribution: speculative sampling is then biased."""

    def propose(self, request):
        draft = super().propose(request)
        if draft.probs is None:
            return draft
        return Draft.chain(draft.token_ids, probs=torch.full_like(draft.probs, 1.0 / VOCAB))


@pytest.mark.slow
def test_the_same_check_catches_a_wrong_q():
    torch.manual_seed(0)
    model = _target()
    proposer = _DraftModelQ(get_registry().method("triforce").validate_options(OPTIONS))
    assert _pvalue(model, proposer, SamplingParams(temperature=1.0), draws=600) < 1e-6


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"layers": "0", "kv_budget": 0}, "kv_budget"),
    ({"layers": "0", "kv_budget": 8, "chunk_size": 16}, r"chunk_size \(16\) is larger than kv_budget \(8\)"),
    ({"kv_budget": 64}, "needs a small draft model"),
    ({"layers": "0", "model": "x"}, "exactly one of 'model'"),
    ({"layers": "0", "draft_kv_budget": 4, "draft_sinks": 4}, r"draft_sinks \(4\) must be smaller"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(Exception, match=message):
        build(options)


@pytest.mark.parametrize("options, message", [
    ({"layers": "0", "kv_budget": 512, "chunk_size": 8}, r"kv_budget \(512\) is not smaller than the model's context \(512\)"),
    ({"layers": "0", "kv_budget": 2048, "chunk_size": 1024}, r"chunk_size \(1024\) is not smaller than the model's context \(512\)"),
    ({"model": "/nonexistent/draft-folder"}, "could not load its draft model '/nonexistent/draft-folder' .*specplug models derive"),
    ({"layers": "7"}, "layers"),
])
def test_bad_bindings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        _bound(options, _model())


def test_proposing_before_binding_is_a_clear_error():
    with pytest.raises(ValueError, match="before bind_target"):
        TriForceProposer(TriForceOptions(layers="0")).propose(ProposalRequest("r", np.arange(5), 5, 2))
