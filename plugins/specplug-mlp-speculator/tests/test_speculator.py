"""The speculator module: vLLM's names and config, the stages' dependence on the drafted token,
export round trip, refusal of another target."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_summary  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_mlp_speculator.speculator import MLPSpeculatorHead  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=2)


def test_names_and_config_are_vllms(target):
    head = MLPSpeculatorHead.for_target(target, n_predict=3)
    names = set(head.state_dict())
    assert names == {f"{kind}.{i}.weight" for kind in ("emb", "proj", "head", "ln") for i in range(3)} | {
        f"ln.{i}.bias" for i in range(3)}
    config = head.vllm_config()
    assert config["model_type"] == "mlp_speculator" and config["n_predict"] == 3 and config["emb_dim"] == H
    assert len(config["top_k_tokens_per_head"]) == 3  # vLLM's MLPSpeculatorConfig asserts this
    assert head.state_weight == pytest.approx(0.5 ** (0.5 / 3))
    assert head.emb_weight == pytest.approx(((1 - head.state_weight**2) * H / 2) ** 0.5)


def test_each_stage_reads_the_previous_state_and_the_token_drafted_before_it(target):
    """The mechanism that makes it a *multi-stage* speculator: stage 1's guess changes when the token
    stage 0 drafted changes (Medusa-style independent heads would not), and when the state changes."""
    torch.manual_seed(0)
    head = MLPSpeculatorHead.random_for_target(target, num_heads=3)
    hidden = torch.randn(4, H)
    tokens = torch.randint(0, V, (4, 3))
    base = head(hidden, tokens)
    other = tokens.clone()
    other[:, 1] = (other[:, 1] + 1) % V
    changed = head(hidden, other)
    assert torch.equal(base[0], changed[0])  # stage 0 reads only token 0
    assert not torch.allclose(base[1], changed[1]) and not torch.allclose(base[2], changed[2])
    assert not torch.allclose(base[1], head(hidden + 1.0, tokens)[1])
    # the teacher-forced forward is the stage-by-stage drafting recurrence
    state = head.first_state(hidden)
    for i in range(3):
        state = head.stage(i, state, tokens[:, i])
        assert torch.allclose(head.head[i](state), base[i], atol=1e-6)


def test_save_load_round_trip_and_refusal(target, tmp_path):
    torch.manual_seed(0)
    head = MLPSpeculatorHead.for_target(target, n_predict=2)
    folder = tmp_path / "mlp"
    head.save_pretrained(folder, HeadMetadata(head.method, target_summary(target), head.hidden_state_layers, V))
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["MLPSpeculatorPreTrainedModel"]
    loaded, meta = load_head(folder, target)
    assert isinstance(loaded, MLPSpeculatorHead) and meta.method == "mlp_speculator"
    for name, tensor in head.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(HeadMismatchError, match="fingerprint"):
        load_head(folder, tiny_llama(vocab_size=V, hidden=H, num_layers=2, seed=7))
