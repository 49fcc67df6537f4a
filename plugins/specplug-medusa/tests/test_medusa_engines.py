"""medusa in the reference engine: greedy output identical to plain decoding, with heads saved in
vLLM 0.32's MedusaModel layout. Heads here are random, so acceptance is asserted only with a trained
head (SmolLM2, ``slow``, when ``specplug train medusa`` has made one)."""

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
    return save_random_head("medusa", tiny, tmp_path_factory.mktemp("heads") / "medusa")


@pytest.mark.parametrize("tree", ["sparse", "chain"])
@pytest.mark.parametrize("verifier", [*LOSSLESS_VERIFIERS, "typical_acceptance"])
def test_greedy_output_equals_plain_decoding(tiny, head, tree, verifier):
    # typical acceptance is lossy in general but equals greedy matching at temperature 0
    made = []

    def factory():
        made.append(get_registry().method("medusa").build({"head": str(head), "tree": tree}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=8, max_new_tokens=30, verifiers=(verifier,))
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._last for p in made)


def test_the_tree_is_the_papers_scaled_to_k_and_bounded_by_the_heads(tiny, head):
    proposer = get_registry().method("medusa").build({"head": str(head)})
    drafts = []
    original = proposer.propose
    proposer.propose = lambda request: drafts.append(original(request)) or drafts[-1]
    ReferenceEngine(tiny).generate(PROMPTS[:1], proposer, k=12, max_new_tokens=30)
    full = [d for d in drafts if len(d) == 12]
    assert full, "a step with room for 12 nodes drafted fewer"
    assert full[0].is_tree and full[0].depths().max() <= 3  # 3 heads: at most 3 deep
    assert full[0].parents.tolist()[:5] == [-1, 0, -1, 0, -1]  # (0,), (0,0), (1,), (0,1), (2,)


def test_heads_for_another_model_or_method_are_refused(tiny, head, tmp_path):
    from specplug.kit.heads import HeadMismatchError

    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("medusa").build({"head": str(head)}), k=3, max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train medusa"):
        get_registry().method("medusa").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_trained_smollm2_heads_are_lossless_and_drafts_get_accepted():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts, total_accepted
    from specplug.testing.smollm2_heads import trained_smollm2_head_or_skip

    model, tokenizer = load_model("smollm2-135m")
    trained_smollm2_head_or_skip(model, "medusa")
    prompts = spec_bench_chat_prompts(tokenizer, 3)
    out = assert_greedy_lossless(lambda: get_registry().method("medusa").build(), model, prompts, k=8,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
