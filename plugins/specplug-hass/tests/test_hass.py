"""HASS: harmonized context alignment (the mechanism), training lowers the loss and writes a head plus
its EAGLE export that load, greedy output identical to plain decoding, refusals."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.engine import ReferenceEngine  # noqa: E402
from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, save_random_head  # noqa: E402
from specplug.registry import get_registry  # noqa: E402
from specplug.testing import LOSSLESS_VERIFIERS, assert_greedy_lossless, repetitive_prompts, tiny_llama, tiny_training_workspace  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402
from specplug_hass.head import save_as_eagle  # noqa: E402
from specplug_hass.objective import HassObjective, alignment_mask  # noqa: E402

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tiny_training_workspace(tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    folder = save_random_head("hass", tiny, tmp_path_factory.mktemp("heads") / "hass")
    loaded, meta = load_head(folder, tiny)
    save_as_eagle(loaded, tiny, folder / "eagle", meta)
    return folder


def test_alignment_steps_see_only_what_drafting_sees(workspace):
    """Harmonized context alignment: at step j the head reads its own step j-1 output, and its output at
    root t does not depend on the target's features after t (drafting has none); the teacher-forced
    step 0 at root t + 1 does read the feature of t + 1."""
    from transformers import AutoModelForCausalLM

    from specplug.train.dataset import TrainingData

    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    data = TrainingData(workspace["data"], [-1])
    batch = data.batch(data.train[:1], 64)
    objective = HassObjective(align_steps=3)
    torch.manual_seed(0)
    head = objective.build(target, data, None)
    with torch.no_grad():
        base = [out.clone() for _, out in objective._unroll(head, batch, 3)]
        t = 10
        batch.states[-1][0, t + 1] += 5.0
        changed = [out for _, out in objective._unroll(head, batch, 3)]
    assert torch.allclose(changed[1][0, t], base[1][0, t], atol=1e-5) and torch.allclose(changed[2][0, t], base[2][0, t], atol=1e-5)
    assert not torch.allclose(changed[0][0, t + 1], base[0][0, t + 1])
    mask = alignment_mask(4, 2)[0, 0] == 0
    assert mask[:, :4].tolist() == torch.ones(4, 4, dtype=torch.bool).tril().tolist()
    assert mask[:, 4:8].tolist() == torch.eye(4, dtype=torch.bool).tolist() == mask[:, 8:].tolist()


def test_the_top_k_term_distils_the_targets_distribution(workspace):
    from transformers import AutoModelForCausalLM

    from specplug.train.dataset import TrainingData

    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    data = TrainingData(workspace["data"], [-1])
    batch = data.batch(data.train[:2], 64)
    with_topk, without = HassObjective(align_steps=1, topk=5), HassObjective(align_steps=1, topk_weight=0.0)
    torch.manual_seed(0)
    head = with_topk.build(target, data, None)
    without.build(target, data, None)
    a, parts = with_topk.loss(head, batch, torch.Generator().manual_seed(1))
    b, _ = without.loss(head, batch, torch.Generator().manual_seed(1))
    assert float((a - b).detach()) == pytest.approx(parts["topk1"], rel=1e-4) and parts["topk1"] > 0


def test_training_lowers_the_loss_and_writes_a_head_and_its_eagle_export(workspace):
    from transformers import AutoModelForCausalLM

    out = workspace["root"] / "hass"
    train_head(TrainConfig(method="hass", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, align_steps=2), log=lambda m: None)
    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    head, meta = load_head(out, target)
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"] and meta.extra["align_steps"] == 2
    eagle, eagle_meta = load_head(out / "eagle", target)
    assert eagle_meta.method == "eagle" and eagle_meta.extra["trained_by"] == "hass"
    for name, tensor in eagle.state_dict().items():
        assert torch.equal(tensor, head.state_dict()[name]), name


@pytest.mark.parametrize(("tree", "verifiers"), [("dynamic", LOSSLESS_VERIFIERS), ("chain", ("tree_verification",))])
def test_greedy_output_equals_plain_decoding(tiny, head, tree, verifiers):
    factory = lambda: get_registry().method("hass").build({"head": str(head), "tree": tree, "depth": 3, "top_k": 3})  # noqa: E731
    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=6, max_new_tokens=20, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0


def test_a_head_for_another_model_is_refused(tiny, head, tmp_path):
    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("hass").build({"head": str(head)}), k=3,
                                        max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train hass"):
        get_registry().method("hass").build({"head": str(tmp_path / "none")}).bind_target(ReferenceEngine(tiny).target_info())
    assert HeadMetadata.read(head).method == "hass"


@pytest.mark.slow
def test_smollm2_with_a_tiny_budget_head_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("hass", align_steps=2)
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("hass").build({"head": str(folder)}), model, prompts,
                                 k=8, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
