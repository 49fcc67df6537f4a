"""ReDrafter: the recurrence, beam search equal to brute force, beams merged into a tree, training,
greedy output identical to plain decoding, refusals."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.engine import ReferenceEngine  # noqa: E402
from specplug.kit.heads import HeadMismatchError, load_head, save_random_head  # noqa: E402
from specplug.registry import get_registry  # noqa: E402
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama, tiny_training_workspace  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402
from specplug_redrafter.proposer import beams_to_tree  # noqa: E402

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    return save_random_head("redrafter", tiny, tmp_path_factory.mktemp("heads") / "redrafter", num_heads=3)


def test_each_step_depends_on_the_tokens_drafted_before(tiny, head):
    drafter, _ = load_head(head, tiny)
    hidden, tokens = torch.randn(4, 64), torch.randint(0, 128, (4, 3))
    with torch.no_grad():
        base = drafter(hidden, tokens)
        other = tokens.clone()
        other[:, 1] = (other[:, 1] + 1) % 128
        changed = drafter(hidden, other)
    assert torch.equal(base[0], changed[0]) and not torch.allclose(base[1], changed[1]) and not torch.allclose(base[2], changed[2])


def test_beam_search_keeps_the_best_sequences_and_the_beams_merge_into_a_tree(tiny, head):
    """Exhaustive search over every 2-token continuation of a small vocabulary: beam search (width
    128, so no pruning at depth 1) returns the best 4 sequences by summed log-probability."""
    proposer = get_registry().method("redrafter").build({"head": str(head), "beam_width": 128, "beam_length": 2})
    proposer.bind_target(ReferenceEngine(tiny).target_info())
    drafter = proposer.head
    hidden, root = torch.randn(64), 9
    beams = proposer.beam_search(hidden, root)
    with torch.no_grad():
        s1 = drafter.step(None, torch.tensor([root]))
        lp1 = torch.log_softmax(drafter.logits(s1, hidden[None]), -1)[0].double()
        s2 = drafter.step(s1.expand(128, -1), torch.arange(128))
        lp2 = torch.log_softmax(drafter.logits(s2, hidden[None]), -1).double()
    total = lp1[:, None] + lp2
    best = sorted(itertools.product(range(128), range(128)), key=lambda ab: -float(total[ab]))[:4]
    assert beams[:4] == best
    tokens, parents = beams_to_tree([(1, 2, 3), (1, 2, 4), (1, 5, 6), (7, 8, 9)], 20)
    assert tokens == [1, 2, 3, 4, 5, 6, 7, 8, 9] and parents == [-1, 0, 1, 1, 0, 4, -1, 6, 7]
    assert beams_to_tree([(1, 2, 3), (1, 2, 4)], 3) == ([1, 2, 3], [-1, 0, 1])


def test_training_lowers_the_loss_and_writes_a_drafter_that_loads(tmp_path):
    from transformers import AutoModelForCausalLM

    workspace = tiny_training_workspace(tmp_path)
    out = tmp_path / "redrafter"
    train_head(TrainConfig(method="redrafter", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, draft_length=3), log=lambda m: None)
    drafter, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"] and drafter.draft_length == 3
    assert not any(name.startswith("embed") for name in drafter.state_dict())


@pytest.mark.parametrize("verifiers", [LOSSLESS_VERIFIERS])
def test_greedy_output_equals_plain_decoding(tiny, head, verifiers):
    made = []

    def factory():
        made.append(get_registry().method("redrafter").build({"head": str(head), "beam_width": 3}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=8, max_new_tokens=20, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._last for p in made)


def test_a_drafter_for_another_model_is_refused(tiny, head, tmp_path):
    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("redrafter").build({"head": str(head)}), k=3,
                                        max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train redrafter"):
        get_registry().method("redrafter").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_smollm2_with_a_tiny_budget_drafter_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("redrafter")
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("redrafter").build({"head": str(folder)}), model, prompts,
                                 k=10, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
