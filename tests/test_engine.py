"""Reference engine: lossless greedy decoding, tree attention, KV rollback, limits, lifecycle, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specplug.engine import GenerationStats, ReferenceEngine, TargetModel
from specplug.protocols import BaseProposer, Draft, Need, SamplingParams
from specplug.registry import UnknownIdError
from specplug.testing import (
    LOSSLESS_VERIFIERS,
    NoisyOracleProposer,
    RandomProposer,
    assert_greedy_lossless,
    examples,
    greedy_reference,
    tiny_llama,
)


VOCAB = 96
PROMPTS = [[1, 2, 3, 4, 5], [7, 8, 9], [11, 12, 13, 14, 15, 16, 17]]


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=VOCAB, seed=3)


@pytest.fixture(scope="module")
def reference(model):
    return greedy_reference(model, PROMPTS, max_new_tokens=64)


# -- plain decoding ------------------------------------------------------------------------------


def test_plain_greedy_matches_transformers_generate(model):
    results = ReferenceEngine(model).generate(PROMPTS[:2], max_new_tokens=20)
    for prompt, result in zip(PROMPTS, results):
        hf = model.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False, min_new_tokens=20)
        assert result.token_ids == hf[0, len(prompt) :].tolist()
        assert result.finish_reason == "length"
        assert result.stats.steps == 20 and result.stats.mat == 1.0 and result.stats.drafted == 0


# -- lossless greedy decoding with chain and tree drafts ------------------------------------------


@pytest.mark.parametrize("tree", [False, True], ids=["chain", "tree"])
@pytest.mark.parametrize("corrupt", [0.0, 0.3])
def test_greedy_lossless_with_noisy_oracle_drafts(model, reference, tree, corrupt):
    out = assert_greedy_lossless(
        lambda: NoisyOracleProposer(reference, VOCAB, corrupt=corrupt, tree=tree, seed=5), model, PROMPTS, k=5, max_new_tokens=40
    )
    for verifier in LOSSLESS_VERIFIERS:
        stats = GenerationStats.merge(r.stats for r in out[verifier])
        assert stats.steps < stats.new_tokens  # drafts were accepted: fewer forwards than tokens
        if corrupt:
            assert len(set(stats.accept_lengths)) > 2  # accept lengths varied
        else:
            assert stats.mat > 3


@pytest.mark.parametrize("tree", [False, True], ids=["chain", "tree"])
def test_greedy_lossless_with_random_drafts(model, tree):
    assert_greedy_lossless(lambda: RandomProposer(VOCAB, tree=tree, seed=1), model, PROMPTS, k=6, max_new_tokens=30)


def test_typical_acceptance_is_greedy_at_temperature_zero(model, reference):
    assert_greedy_lossless(
        lambda: NoisyOracleProposer(reference, VOCAB, corrupt=0.3, tree=True), model, PROMPTS[:2], k=4, verifiers=("typical_acceptance",)
    )


# -- tree attention ------------------------------------------------------------------------------


def _brute_force(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1].float()  # [V]


@pytest.mark.parametrize("cached", [0, 3])
def test_tree_attention_matches_per_path_forward(model, cached):
    rng = np.random.default_rng(0)
    prompt = [5, 9, 2, 44, 17, 8]
    n = 9
    tokens = rng.integers(VOCAB, size=n).tolist()
    parents = [int(rng.integers(-1, i)) for i in range(n)]
    draft = Draft(tokens, parents)
    target = TargetModel(model)
    if cached:
        target.forward(prompt[:cached])
    logits = target.forward(prompt[cached:] + tokens, parents=draft.parents)  # [pending + n, V]
    root_row = len(prompt) - cached - 1
    assert torch.allclose(logits[root_row], _brute_force(model, prompt), atol=1e-4)
    for node in range(n):
        path = [tokens[i] for i in draft.path_to(node)]
        assert torch.allclose(logits[root_row + 1 + node], _brute_force(model, prompt + path), atol=1e-4), node
    # keep one root-to-leaf path; the next forward must equal a fresh forward of prompt + path
    leaf = n - 1
    path_nodes = draft.path_to(leaf)
    target.keep(list(range(len(prompt))) + [len(prompt) + i for i in path_nodes])
    nxt = target.forward([3])
    assert torch.allclose(nxt[0], _brute_force(model, prompt + [tokens[i] for i in path_nodes] + [3]), atol=1e-4)


def test_forward_rejects_bad_bias_and_rollback_bounds(model):
    target = TargetModel(model)
    target.forward([1, 2, 3])
    with pytest.raises(ValueError, match="attention_bias must be"):
        target.forward([4], attention_bias=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="cannot roll back"):
        target.rollback(10)
    target.rollback(1)
    assert target.cache_len == 1


# -- KV rollback under random accept lengths, EOS and the length limit ----------------------------


class ScriptedProposer(BaseProposer):
    """Drafts the true continuation with a chosen number of correct tokens, then a wrong one; after
    every step checks that the engine's KV cache equals a fresh forward of the committed tokens."""

    def __init__(self, engine, reference, plan, tree_plan, vocab):
        self.engine, self.reference, self.plan, self.tree_plan, self.vocab = engine, reference, plan, tree_plan, vocab
        self.step = 0
        self.committed: list[int] = []

    def start_request(self, request_id, prompt_ids):
        self.truth = self.reference[tuple(int(t) for t in prompt_ids)]
        self.committed = [int(t) for t in prompt_ids]

    def propose(self, request):
        assert [int(t) for t in request.token_ids] == self.committed
        pos = len(request.token_ids) - request.num_prompt_tokens
        good = self.plan[self.step % len(self.plan)]
        tree = self.tree_plan[self.step % len(self.tree_plan)]
        self.step += 1
        truth = self.truth[pos : pos + good + 1]
        tokens = truth[:good] + [(truth[good] + 1) % self.vocab if len(truth) > good else 0]
        tokens = tokens + [int(t) for t in np.arange(3) + 7]  # junk after the wrong token
        if not tree:
            return Draft.chain(tokens)
        # a decoy sibling before every node: the accepted path is never the first branch
        ids, parents, parent = [], [], -1
        for t in tokens:
            ids += [(t + 3) % self.vocab, t]
            parents += [parent, parent]
            parent = len(ids) - 1
        return Draft(ids, parents)

    def observe(self, feedback):
        assert len(feedback.draft) <= feedback.draft.token_ids.size
        self.committed += feedback.emitted
        target = self.engine.target
        assert target.cache_len == len(self.committed) - 1  # everything but the new root
        with torch.inference_mode():
            fresh = self.engine.model(torch.tensor([self.committed[:-1]]), use_cache=True).past_key_values
        for ours, theirs in zip(target.cache.layers, fresh.layers):
            assert torch.allclose(ours.keys, theirs.keys, atol=1e-4)
            assert torch.allclose(ours.values, theirs.values, atol=1e-4)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    tree_plan=st.lists(st.booleans(), min_size=1, max_size=3),
    max_new_tokens=st.integers(1, 30),
    eos_at=st.one_of(st.none(), st.integers(0, 29)),
    k=st.integers(1, 6),
)
def test_kv_rollback_under_random_accept_lengths(model, reference, plan, tree_plan, max_new_tokens, eos_at, k):
    prompt = PROMPTS[0]
    truth = reference[tuple(prompt)]
    eos = None if eos_at is None else truth[eos_at]
    engine = ReferenceEngine(model, eos_token_id=eos)
    proposer = ScriptedProposer(engine, reference, plan, tree_plan, VOCAB)
    result = engine.generate([prompt], proposer, "tree_verification", k=k * 2, max_new_tokens=max_new_tokens)[0]
    expected = truth[:max_new_tokens]
    if eos is not None and eos in expected:
        expected = expected[: expected.index(eos) + 1]
    assert result.token_ids == expected
    assert result.finish_reason == ("eos" if eos is not None and expected and expected[-1] == eos else "length")
    assert len(result.token_ids) <= max_new_tokens


# -- limits, sampling, needs, lifecycle ------------------------------------------------------------


class GreedyFirehose(BaseProposer):
    """Ignores max_tokens and drafts 50 tokens: the engine must truncate."""

    def __init__(self, reference):
        self.reference = reference

    def start_request(self, request_id, prompt_ids):
        self.truth = self.reference[tuple(int(t) for t in prompt_ids)] + [0] * 100
        self.steps: list[tuple[int, int, int]] = []  # (max_tokens offered, draft verified, emitted)

    def propose(self, request):
        pos = len(request.token_ids) - request.num_prompt_tokens
        self.offered = request.max_tokens
        return Draft.chain(self.truth[pos : pos + 50])

    def observe(self, feedback):
        self.steps.append((self.offered, len(feedback.draft), len(feedback.emitted)))


def test_drafts_are_truncated_to_k_and_the_budget(model, reference):
    engine = ReferenceEngine(model)
    for max_new in (2, 7, 13):
        proposer = GreedyFirehose(reference)
        result = engine.generate([PROMPTS[0]], proposer, k=4, max_new_tokens=max_new)[0]
        assert result.token_ids == reference[tuple(PROMPTS[0])][:max_new]
        done = 0
        for offered, drafted, emitted in proposer.steps:
            assert offered == min(4, max_new - done - 1)
            assert drafted == offered and emitted == drafted + 1  # the oracle draft is fully accepted
            done += emitted
        assert done == max_new == result.stats.new_tokens
    # one token left: no draft is asked for at all
    proposer = GreedyFirehose(reference)
    result = engine.generate([PROMPTS[0]], proposer, k=4, max_new_tokens=1)[0]
    assert len(result.token_ids) == 1 and result.stats.drafted == 0


def test_sampling_is_seeded_and_a_tiny_nucleus_is_greedy(model, reference):
    engine = ReferenceEngine(model)
    hot = SamplingParams(temperature=1.5)

    def proposer():
        return NoisyOracleProposer(reference, VOCAB, corrupt=0.3, seed=2)

    a = engine.generate(PROMPTS[:2], proposer(), "speculative_sampling", k=4, max_new_tokens=20, sampling=hot, seed=3)
    b = engine.generate(PROMPTS[:2], proposer(), "speculative_sampling", k=4, max_new_tokens=20, sampling=hot, seed=3)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    plain = engine.generate(PROMPTS[:2], None, None, max_new_tokens=20, sampling=hot, seed=3)
    assert [r.token_ids for r in plain] != [reference[tuple(p)][:20] for p in PROMPTS[:2]]  # it does sample
    nucleus = SamplingParams(temperature=1.0, top_p=1e-6)
    for verifier in LOSSLESS_VERIFIERS:
        got = engine.generate(PROMPTS[:2], proposer(), verifier, k=4, max_new_tokens=20, sampling=nucleus)
        assert [r.token_ids for r in got] == [reference[tuple(p)][:20] for p in PROMPTS[:2]]


class NeedyProposer(BaseProposer):
    needs = frozenset({Need.target_predictions, Need.target_topk})

    def __init__(self):
        self.seen = self.proposed = 0

    def propose(self, request):
        self.proposed += 1
        return Draft.chain([int(request.token_ids[-1])] * request.max_tokens)

    def observe(self, feedback):
        n = len(feedback.draft)
        assert feedback.target_predictions.shape == (n + 1,)
        assert feedback.target_topk.shape == (n + 1, 8)
        assert (feedback.target_topk[:, 0] == feedback.target_predictions).all()
        # greedy: the bonus is the target's prediction after the last accepted node
        assert feedback.emitted[-1] == feedback.target_predictions[len(feedback.accepted_nodes)]
        self.seen += 1


def test_target_predictions_and_topk_feedback(model):
    proposer = NeedyProposer()
    result = ReferenceEngine(model).generate([PROMPTS[1]], proposer, k=3, max_new_tokens=12)[0]
    assert proposer.seen == proposer.proposed > 0
    assert result.stats.steps - 1 <= proposer.proposed <= result.stats.steps


def test_lifecycle_calls_and_finish_on_error(model, reference):
    proposer = NoisyOracleProposer(reference, VOCAB)
    ReferenceEngine(model).generate(PROMPTS, proposer, k=3, max_new_tokens=6)
    starts = [c for c in proposer.calls if c.startswith("start:")]
    finishes = [c for c in proposer.calls if c.startswith("finish:")]
    assert len(starts) == len(finishes) == len(PROMPTS) and not proposer.live
    assert len({c.split(":")[1] for c in starts}) == len(PROMPTS)  # unique request ids
    for rid in (c.split(":")[1] for c in starts):
        events = [c.split(":")[0] for c in proposer.calls if c.endswith(":" + rid)]
        assert events[0] == "start" and events[-1] == "finish" and set(events[1:-1]) == {"observe"}

    class Broken(NoisyOracleProposer):
        def propose(self, request):
            raise RuntimeError("boom")

    broken = Broken(reference, VOCAB)
    with pytest.raises(RuntimeError, match="boom"):
        ReferenceEngine(model).generate(PROMPTS[:1], broken, k=3)
    assert broken.calls[-1].startswith("finish:") and not broken.live


def test_eos_from_config_ends_requests(reference):
    truth = reference[tuple(PROMPTS[0])]
    eos_model = tiny_llama(vocab_size=VOCAB, seed=3, eos_token_id=truth[4])
    result = ReferenceEngine(eos_model).generate([PROMPTS[0]], max_new_tokens=30)[0]
    assert result.token_ids == truth[: truth.index(truth[4]) + 1] and result.finish_reason == "eos"


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input_errors(model, reference):
    engine = ReferenceEngine(model)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        engine.generate([[1, 2], []])
    with pytest.raises(ValueError, match="k .* must be >= 1"):
        engine.generate([[1, 2]], NoisyOracleProposer(reference, VOCAB), k=0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        engine.generate([[1, VOCAB + 5]])
    with pytest.raises(TypeError, match="list of token-id lists"):
        engine.generate("hello")
    with pytest.raises(UnknownIdError, match="unknown verifier"):
        engine.generate([[1, 2]], verifier="greedy_matchh")

    class ListProposer(BaseProposer):
        def propose(self, request):
            return [1, 2]

    with pytest.raises(TypeError, match="not a Draft"):
        engine.generate([[1, 2]], ListProposer())

    class WildProposer(BaseProposer):
        def propose(self, request):
            return Draft.chain([VOCAB + 1])

    with pytest.raises(ValueError, match="drafted token ids outside"):
        engine.generate([[1, 2]], WildProposer())
