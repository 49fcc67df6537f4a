"""hydra in the reference engine: greedy output identical to plain decoding (tiny random target;
SmolLM2 with heads trained on the tiny budget, ``slow``), the tree's shape, refusals."""

from __future__ import annotations

import pytest

from specplug.engine import ReferenceEngine
from specplug.registry import get_registry
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama

from specplug.kit.heads import save_random_head

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    return save_random_head("hydra", tiny, tmp_path_factory.mktemp("heads") / "hydra")


@pytest.mark.parametrize(("tree", "verifiers"), [("sparse", LOSSLESS_VERIFIERS), ("chain", ("tree_verification",))])
def test_greedy_output_equals_plain_decoding(tiny, head, tree, verifiers):
    made = []

    def factory():
        made.append(get_registry().method("hydra").build({"head": str(head), "tree": tree}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=8, max_new_tokens=24, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._last for p in made)


def test_siblings_get_children_of_their_own(tiny, head):
    """In a drafted tree, the first child of root rank 0 and of root rank 1 are each head 1's guess
    given that parent: they differ where the heads read the parent's token (random heads here)."""
    proposer = get_registry().method("hydra").build({"head": str(head)})
    drafts = []
    original = proposer.propose
    proposer.propose = lambda request: drafts.append(original(request)) or drafts[-1]
    ReferenceEngine(tiny).generate(PROMPTS[:2], proposer, k=12, max_new_tokens=20)
    full = [d for d in drafts if len(d) == 12]
    assert full and all(d.parents.tolist()[:7] == [-1, 0, -1, 0, -1, 1, 2] for d in full)
    # node 1 is (0, 0), node 6 is (1, 0): rank 0 of head 1 under two parents
    assert any(d.token_ids[1] != d.token_ids[6] for d in full)


def test_heads_for_another_model_are_refused(tiny, head, tmp_path):
    from specplug.kit.heads import HeadMismatchError

    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("hydra").build({"head": str(head)}), k=3,
                                        max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train hydra"):
        get_registry().method("hydra").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_smollm2_with_tiny_budget_heads_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("hydra", num_heads=3, num_layers=2)
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("hydra").build({"head": str(folder)}), model, prompts,
                                 k=10, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
