"""Blockwise parallel decoding: the k heads predict offsets 1..k (p_1 is the target itself), training
lowers the loss and writes heads that load, greedy output equals plain decoding, refusals."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.engine import ReferenceEngine  # noqa: E402
from specplug.kit.heads import HeadMismatchError, load_head, save_random_head  # noqa: E402
from specplug.registry import get_registry  # noqa: E402
from specplug.testing import (  # noqa: E402
    LOSSLESS_VERIFIERS,
    assert_greedy_lossless,
    repetitive_prompts,
    tiny_llama,
    tiny_training_workspace,
)
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402

PROMPTS = repetitive_prompts(3, 128) + [[5, 9, 17], [7]]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(vocab_size=128, seed=1)


@pytest.fixture(scope="module")
def head(tiny, tmp_path_factory):
    return save_random_head("blockwise", tiny, tmp_path_factory.mktemp("heads") / "blockwise", num_heads=3)


def test_the_k_heads_predict_offsets_1_to_k(tiny, head):
    """p_1 is the target's own prediction; the objective trains p_j on the token j ahead; the proposer
    drafts p_2 .. p_k's top tokens after the root (p_1's choice) from the same state."""
    from specplug.train.dataset import Batch
    from specplug_blockwise.objective import BlockwiseObjective

    heads, _ = load_head(head, tiny)
    hidden = torch.randn(3, 64)
    with torch.no_grad():
        assert torch.equal(heads(hidden)[0], tiny.get_output_embeddings()(hidden))
    T = 12
    tokens = torch.arange(T)[None]
    batch = Batch(tokens, torch.ones(1, T, dtype=torch.bool), torch.ones(1, T, dtype=torch.bool), tokens.clone(),
                  {-1: torch.randn(1, T, 64)})
    offsets = {j: (target - torch.nonzero(torch.ones(T - j))[:, 0]).unique().tolist()
               for j, _, target in BlockwiseObjective(block_size=4).per_offset(heads, batch)}
    assert offsets == {2: [2], 3: [3], 4: [4]}
    proposer = get_registry().method("blockwise").build({"head": str(head)})
    requests = []
    original = proposer.propose
    proposer.propose = lambda request: requests.append((request, original(request))) or requests[-1][1]
    ReferenceEngine(tiny).generate([[3, 4, 5, 6]], proposer, k=5, max_new_tokens=16)
    request, draft = requests[1]  # the second step: its root is the bonus token of the first
    assert not proposer._last  # dropped when the request finished; recompute the state from the target
    with torch.no_grad():
        out = tiny(torch.tensor([request.token_ids[:-1].tolist()]), output_hidden_states=True)
        h = out.hidden_states[-1][0, -1]
        assert int(tiny.get_output_embeddings()(h).argmax()) == int(request.token_ids[-1])  # the root is p_1's
        assert draft.token_ids.tolist() == [int(heads.offset_logits(j, h).argmax()) for j in (2, 3, 4)]


@pytest.mark.parametrize("verifiers", [LOSSLESS_VERIFIERS])
def test_greedy_output_equals_plain_decoding(tiny, head, verifiers):
    made = []

    def factory():
        made.append(get_registry().method("blockwise").build({"head": str(head)}))
        return made[-1]

    out = assert_greedy_lossless(factory, tiny, PROMPTS, k=5, max_new_tokens=24, verifiers=verifiers)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
    assert all(not p._last for p in made)


def test_training_lowers_the_loss_and_writes_heads_that_load(tmp_path):
    from transformers import AutoModelForCausalLM

    workspace = tiny_training_workspace(tmp_path)
    out = tmp_path / "blockwise"
    train_head(TrainConfig(method="blockwise", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, block_size=3, ffn_mult=2), log=lambda m: None)
    heads, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert heads.block_size == 3 and len(training["held_out"]["accuracy"]) == 2
    assert set(heads.state_dict()) == {f"heads.{i}.{n}.{p}" for i in range(2) for n in ("fc1", "fc2") for p in ("weight", "bias")}


def test_heads_for_another_model_are_refused(tiny, head, tmp_path):
    other = tiny_llama(vocab_size=128, seed=2)
    with pytest.raises(HeadMismatchError, match=r"trained for target .*specplug train"):
        ReferenceEngine(other).generate([[1, 2, 3]], get_registry().method("blockwise").build({"head": str(head)}), k=3,
                                        max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="specplug train blockwise"):
        get_registry().method("blockwise").build({"head": str(tmp_path / "none")}).bind_target(
            ReferenceEngine(tiny).target_info())


@pytest.mark.slow
def test_smollm2_with_tiny_budget_heads_is_lossless():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts
    from specplug.testing.smollm2_heads import smollm2_tiny_head

    model, tokenizer = load_model("smollm2-135m")
    folder = smollm2_tiny_head("blockwise")
    prompts = spec_bench_chat_prompts(tokenizer, 2)
    out = assert_greedy_lossless(lambda: get_registry().method("blockwise").build({"head": str(folder)}), model, prompts,
                                 k=5, max_new_tokens=24, verifiers=("greedy_match",), tokenizer=tokenizer)
    assert sum(r.stats.drafted for results in out.values() for r in results) > 0
