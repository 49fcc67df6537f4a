"""mlp_speculator in the reference engine: greedy output identical to plain decoding (tiny random
target; SmolLM2 with a speculator trained on the tiny budget, ``slow``), the candidate tree, refusals."""

from __future__ import annotations

import pytest

from specplug.engine import ReferenceEngine
from specplug.registry import get_registry
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama

from specplug.kit.heads import save_random_head
from specplug_mlp_speculator.proposer import candidate_tree

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    return save_random_head("mlp_speculator", tiny, tmp_path_factory.mktemp("heads") / "mlp", num_heads=3)


@pytest.mark.parametrize(("tree", "verifiers"), [("candidates", LOSSLESS_VERIFIERS), ("chain", ("tree_verification",))])
def test_greedy_output_equals_plain_decoding(tiny, head, tree, verifiers):
    made = []

    def factory():
        made.append(get_registry().method("mlp_speculator").build({"head": str(head), "tree": tree}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=10, max_new_tokens=24, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._last for p in made)


def test_candidate_tree_merges_prefixes_and_fits_the_size():
    paths = [(1, 2, 3), (1, 2, 4), (1, 5, 6), (7, 8, 9)]
    assert candidate_tree(paths, 20) == ([1, 2, 3, 4, 5, 6, 7, 8, 9], [-1, 0, 1, 1, 0, 4, -1, 6, 7])
    assert candidate_tree(paths, 5) == ([1, 2, 3, 4, 5], [-1, 0, 1, 1, 0])


def test_the_draft_is_the_best_candidate_sequences_by_summed_log_probability(tiny, head):
    """Brute force over every top-k product equals the proposer's beam of candidates."""
    import itertools

    import torch

    proposer = get_registry().method("mlp_speculator").build({"head": str(head), "n_candidates": 4})
    proposer.bind_target(ReferenceEngine(tiny).target_info())
    spec = proposer.head
    hidden, root = torch.randn(64), 11
    got = proposer._candidates(hidden, root)
    scored = []
    with torch.no_grad():
        first = spec.first_state(hidden[None])
        top0 = torch.log_softmax(spec.head[0](spec.stage(0, first, torch.tensor([root]))), -1)[0].topk(5)
        for a, la in zip(top0.indices.tolist(), top0.values.tolist()):
            s1 = spec.stage(1, spec.stage(0, first, torch.tensor([root])), torch.tensor([a]))
            top1 = torch.log_softmax(spec.head[1](s1), -1)[0].topk(4)
            for b, lb in zip(top1.indices.tolist(), top1.values.tolist()):
                top2 = torch.log_softmax(spec.head[2](spec.stage(2, s1, torch.tensor([b]))), -1)[0].topk(3)
                for c, lc in zip(top2.indices.tolist(), top2.values.tolist()):
                    scored.append((la + lb + lc, (a, b, c)))
    best = [p for _, p in sorted(scored, key=lambda x: -x[0])[:4]]
    assert got == best and len(list(itertools.chain(*got))) == 12


def test_a_speculator_for_another_model_is_refused(tiny, head, tmp_path):
    from specplug.kit.heads import HeadMismatchError

    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("mlp_speculator").build({"head": str(head)}),
                                        k=3, max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train mlp_speculator"):
        get_registry().method("mlp_speculator").build({"head": str(tmp_path / "none")}).bind_target(
            ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_smollm2_with_a_tiny_budget_speculator_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("mlp_speculator")
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("mlp_speculator").build({"head": str(folder)}), model,
                                 prompts, k=8, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
