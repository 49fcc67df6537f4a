"""amphista in the reference engine: greedy output identical to plain decoding (tiny random target;
SmolLM2 with heads trained on the tiny budget, ``slow``), refusals."""

from __future__ import annotations

import pytest

from specplug.engine import ReferenceEngine
from specplug.kit.heads import save_random_head
from specplug.registry import get_registry
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama

PROMPTS = repetitive_prompts(2, 96) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    return save_random_head("amphista", tiny, tmp_path_factory.mktemp("heads") / "amphista")


@pytest.mark.parametrize(("tree", "verifiers"), [("sparse", LOSSLESS_VERIFIERS), ("chain", ("tree_verification",))])
def test_greedy_output_equals_plain_decoding(tiny, head, tree, verifiers):
    made = []

    def factory():
        made.append(get_registry().method("amphista").build({"head": str(head), "tree": tree}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=8, max_new_tokens=20, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._requests for p in made)  # every request's cache is dropped when it ends


def test_heads_for_another_model_are_refused(tiny, head, tmp_path):
    from specplug.kit.heads import HeadMismatchError

    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("amphista").build({"head": str(head)}), k=3,
                                        max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train amphista"):
        get_registry().method("amphista").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_smollm2_with_tiny_budget_heads_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("amphista", num_heads=3)
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("amphista").build({"head": str(folder)}), model, prompts,
                                 k=10, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
