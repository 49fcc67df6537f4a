"""eagle, eagle2 and eagle3 in the reference engine: greedy output identical to plain decoding.

Heads here are random (saved in vLLM's layout by specplug.kit.heads' own export), so they draft badly:
these tests check losslessness, the head's cache and its rollback, and refusals. Acceptance is
asserted only with a trained head (SmolLM2, ``slow``, when ``specplug train`` has made one).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.protocols import ProposalRequest, SamplingParams
from specplug.registry import get_registry
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama

from specplug.kit.heads import save_random_head

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]  # [7]: no state before the root at the first step


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1, num_layers=4)


@pytest.fixture(scope="module")
def heads(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    return {"eagle": save_random_head("eagle", tiny, root / "eagle"),
            "eagle3": save_random_head("eagle3", tiny, root / "eagle3", draft_vocab=64)}


# (method, draft shape, verifiers): every lossless verifier on one chain and one tree, the default on the rest
CASES = [("eagle", "chain", LOSSLESS_VERIFIERS), ("eagle2", "dynamic", ("tree_verification",)),
         ("eagle3", "chain", ("tree_verification",)), ("eagle3", "dynamic", LOSSLESS_VERIFIERS)]


def build(method, heads, **options):
    head = heads["eagle3" if method == "eagle3" else "eagle"]
    return get_registry().method(method).build({"head": str(head), **options})


@pytest.mark.parametrize(("method", "tree", "verifiers"), CASES)
def test_greedy_output_equals_plain_decoding(tiny, heads, method, tree, verifiers):
    made = []

    def factory():
        made.append(build(method, heads, tree=tree, depth=3, top_k=3))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=6, max_new_tokens=24, verifiers=verifiers)
    drafted = sum(r.stats.drafted for results in out.values() for r in results)
    assert drafted > 0, "the proposer never drafted"
    assert all(not p.caches for p in made), "per-request head caches must be dropped when requests finish"


def test_the_head_cache_keeps_only_real_entries_and_drafts_match_a_fresh_head(tiny, heads):
    """Incremental drafting (real states fed step by step, drafts rolled back) gives the drafts a fresh
    head gives when fed the whole committed history at once."""
    from specplug.kit.target import TargetModel

    for method in ("eagle", "eagle3"):
        steps = []

        class Recording:
            def __init__(self, inner):
                self.inner = inner
                self.needs = inner.needs

            def __getattr__(self, name):
                return getattr(self.inner, name)

            def propose(self, request):
                draft = self.inner.propose(request)
                cache = self.inner.caches[request.request_id]
                assert cache.length == cache.real == len(request.token_ids) - 1  # drafts rolled back
                steps.append((request, draft))
                return draft

        proposer = Recording(build(method, heads, tree="dynamic", depth=3, top_k=3))
        ReferenceEngine(tiny).generate(PROMPTS[:1], proposer, k=5, max_new_tokens=20)
        assert len(steps) > 3
        target = TargetModel(tiny)
        for request, draft in steps[1:]:
            fresh = build(method, heads, tree="dynamic", depth=3, top_k=3)
            fresh.bind_target(ReferenceEngine(tiny).target_info())
            target.reset()
            committed = request.token_ids.tolist()
            _, states = target.forward_with_states(committed[:-1], fresh.hidden_state_layers)
            again = fresh.propose(ProposalRequest("r", request.token_ids, request.num_prompt_tokens, request.max_tokens,
                                                  hidden_states=states, hidden_start=0))
            assert again.token_ids.tolist() == draft.token_ids.tolist()
            assert again.parents.tolist() == draft.parents.tolist()


def test_eagle3_drafts_only_its_reduced_vocabulary(tiny, heads):
    from specplug.kit.heads import load_head

    head, _ = load_head(heads["eagle3"], tiny)
    allowed = set(head.token_ids.tolist())
    assert len(allowed) == 64
    proposer = build("eagle3", heads, tree="dynamic", depth=3, top_k=4)
    engine = ReferenceEngine(tiny)
    seen = []
    original = proposer.propose
    proposer.propose = lambda request: seen.append(original(request)) or seen[-1]
    engine.generate(PROMPTS[:2], proposer, k=8, max_new_tokens=16)
    drafted = {int(t) for d in seen for t in d.token_ids}
    assert drafted and drafted <= allowed


@pytest.mark.parametrize(("method", "tree"), [("eagle", "chain"), ("eagle3", "chain"), ("eagle2", "dynamic")])
def test_sampling_chains_carry_q_and_trees_are_deterministic(tiny, heads, method, tree):
    proposer = build(method, heads, tree=tree, depth=3, top_k=3)
    engine = ReferenceEngine(tiny)
    drafts = []
    original = proposer.propose
    proposer.propose = lambda request: drafts.append(original(request)) or drafts[-1]
    sampling = SamplingParams(temperature=0.8)
    out = engine.generate(PROMPTS[:2], proposer, k=4, max_new_tokens=16, sampling=sampling, seed=3)
    assert all(len(r.token_ids) == 16 or r.finish_reason == "eos" for r in out)
    drafts = [d for d in drafts if len(d)]
    assert drafts
    for d in drafts:
        if tree == "chain":
            q = torch.as_tensor(d.probs)
            assert q.shape == (len(d), 128)
            assert torch.allclose(q.sum(-1), torch.ones(len(d)), atol=1e-5)
            assert all(float(q[i, t]) > 0 for i, t in enumerate(d.token_ids.tolist()))  # each token was drawn from q
        else:
            assert d.probs is None and d.is_tree


def test_a_head_trained_for_another_model_is_refused(heads):
    from specplug.kit.heads import HeadMismatchError

    other = tiny_llama(vocab_size=128, seed=2, num_layers=4)
    for method in ("eagle", "eagle2", "eagle3"):
        with pytest.raises(HeadMismatchError, match=r"trained for target .*fingerprint.*specplug train"):
            ReferenceEngine(other).generate([[1, 2, 3]], build(method, heads), k=3, max_new_tokens=4)


def test_a_head_of_the_wrong_method_or_a_missing_folder_is_refused(tiny, heads, tmp_path):
    with pytest.raises(ValueError, match=r"trained for 'eagle3'.*needs a 'eagle' head"):
        get_registry().method("eagle").build({"head": str(heads["eagle3"])}).bind_target(ReferenceEngine(tiny).target_info())
    with pytest.raises(FileNotFoundError, match=r"specplug train eagle3"):
        get_registry().method("eagle3").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())


def test_options_are_validated_and_defaults_follow_the_paper():
    from specplug.methods import OptionsError

    registry = get_registry()
    assert registry.method("eagle").build().options.tree == "chain"
    assert registry.method("eagle2").build().options.tree == "dynamic"
    assert registry.method("eagle3").build().options.tree == "dynamic"
    with pytest.raises(OptionsError, match="top_k"):
        registry.method("eagle2").validate_options({"top_k": 0})
    with pytest.raises(OptionsError, match="tree"):
        registry.method("eagle").validate_options({"tree": "static"})


@pytest.mark.slow
@pytest.mark.parametrize(("method", "head_method"), [("eagle", "eagle"), ("eagle2", "eagle"), ("eagle3", "eagle3")])
def test_trained_smollm2_head_is_lossless_and_drafts_get_accepted(method, head_method):
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts, total_accepted
    from specplug.testing.smollm2_heads import trained_smollm2_head_or_skip

    model, tokenizer = load_model("smollm2-135m")
    trained_smollm2_head_or_skip(model, head_method)
    prompts = spec_bench_chat_prompts(tokenizer, 3)
    out = assert_greedy_lossless(lambda: get_registry().method(method).build({"tree_size": 8}), model, prompts, k=8,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
