"""``specplug train eagle|eagle3`` on a tiny random target: the objectives lower the held-out loss,
EAGLE-3 keeps a reduced vocabulary and its three layers, the exported head prints vLLM's native
config, and the training-time-test mask lets each unroll step see what vLLM's drafting does."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import load_head  # noqa: E402
from specplug.testing import tiny_training_workspace  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402
from specplug_eagle.objectives import ttt_mask  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny random target and its training data (:func:`specplug.testing.tiny_training_workspace`)."""
    return tiny_training_workspace(tmp_path_factory.mktemp("train"))


def _train(ws, method, out, **kw):
    lines = []
    train_head(TrainConfig(method=method, model=str(ws["target"]), data=str(ws["data"]), out=str(out), budget="tiny",
                           quiet=True, **kw), log=lines.append)
    return lines


@pytest.mark.parametrize("method", ["eagle", "eagle3"])
def test_training_lowers_the_held_out_loss(workspace, method):
    out = workspace["root"] / f"head-{method}"
    lines = _train(workspace, method, out)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    from transformers import AutoModelForCausalLM

    head, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    accuracy = training["held_out"]["accuracy"]
    assert len(accuracy) == (7 if method == "eagle3" else 5) and all(0.0 <= a <= 1.0 for a in accuracy)
    memo = training["memorisation"]  # the train-versus-held-out check
    assert memo["train_sequences"] >= 1 and memo["held_out_loss"] == training["held_out"]["loss"]
    assert training["last_loss"] < training["first_loss"]
    assert meta.data_manifest_id == json.loads((workspace["data"] / "manifest.json").read_text())["id"]
    if method == "eagle3":
        assert head.draft_vocab_size <= 128 and meta.hidden_state_layers == [0, 1, 2]
        assert training["settings"]["ttt_steps"] == 7 and training["settings"]["draft_vocab"] == 8192
        assert training["settings"]["targets"] == "soft"
        speculators = json.loads((out / "speculators" / "config.json").read_text())
        assert speculators["speculators_model_type"] == "eagle3"


def test_an_option_the_objective_does_not_take_is_refused(workspace, tmp_path):
    from specplug.train.trainer import TrainError

    with pytest.raises(TrainError, match="num_heads"):
        _train(workspace, "eagle", tmp_path / "h", num_heads=3)


def test_vllm_config_prints_the_native_config_of_a_head(workspace):
    from click.testing import CliRunner

    from specplug.cli import cli

    head_dir = workspace["root"] / "head-eagle3"
    if not head_dir.exists():
        _train(workspace, "eagle3", head_dir)
    result = CliRunner().invoke(cli, ["vllm-config", "eagle3", "--model", str(head_dir), "--json"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.output)["native"]["speculative_config"]
    assert config == {"method": "eagle3", "model": str(head_dir.resolve()), "num_speculative_tokens": 4}
    wrong = CliRunner().invoke(cli, ["vllm-config", "eagle", "--model", str(head_dir)])
    assert wrong.exit_code != 0 and "'eagle3'" in wrong.output
    missing = CliRunner().invoke(cli, ["vllm-config", "eagle3", "--model", str(workspace["root"])])
    assert missing.exit_code != 0 and "not a head folder" in missing.output


def test_ttt_mask_is_causal_then_one_key_per_later_step():
    allowed = ttt_mask(3, 2) == 0  # [1, 1, T, 3T]
    assert allowed.shape == (1, 1, 3, 9)
    assert torch.equal(allowed[0, 0, :, :3], torch.ones(3, 3, dtype=torch.bool).tril())
    for step in (1, 2):
        assert torch.equal(allowed[0, 0, :, 3 * step : 3 * step + 3], torch.eye(3, dtype=torch.bool))


def test_the_commands_carry_their_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    eagle3 = CliRunner().invoke(cli, ["train", "eagle3", "--help"])
    assert eagle3.exit_code == 0
    for option in ("--ttt-steps", "--draft-vocab", "--layers", "--budget", "--lr"):
        assert option in eagle3.output
    bad = CliRunner().invoke(cli, ["train", "eagle3", "--layers", "a,b"])
    assert bad.exit_code != 0 and "comma-separated layer ids" in bad.output


def test_training_data_keeps_eagle3s_layers_by_default():
    from specplug.train.data import objectives_layers

    # the final state and EAGLE-3's low/mid/high (vLLM's default); other plugins' objectives may add layers
    assert {-1, 2, 15, 27} <= set(objectives_layers(30))
    assert {-1, 0, 2, 3} <= set(objectives_layers(4))
    from specplug_eagle.plugin import _eagle3_layers

    assert _eagle3_layers(2) == []  # too few layers to fuse three


def _batch_and_head(workspace):
    from transformers import AutoModelForCausalLM

    from specplug.train.dataset import TrainingData
    from specplug_eagle.eagle3_head import Eagle3Head

    target = AutoModelForCausalLM.from_pretrained(workspace["target"], dtype=torch.float32)
    data = TrainingData(workspace["data"], [0, 1, 2, -1])
    batch = data.batch(data.train[:3], 96)
    head = Eagle3Head.for_target(target, draft_token_ids=list(range(128)), aux_layers=[0, 1, 2])
    return target, data, batch, head


def test_rooted_unroll_equals_the_full_unroll_at_the_positions_with_loss(workspace):
    """Steps after the first run only at roots (no compute where no loss is), with the same outputs."""
    from specplug.train.shift import ahead, target_mask
    from specplug_eagle.objectives import _unroll, rooted_unroll

    _, _, batch, head = _batch_and_head(workspace)
    batch.root[:, :20] = False  # a long prompt: most positions carry no loss
    fused = torch.cat([batch.states[layer] for layer in (0, 1, 2)], dim=-1)
    with torch.no_grad():
        full = [out for _, out in _unroll(head, batch, fused, 4)]
        rooted = list(rooted_unroll(head, batch, fused, 4))
    for step, out, pick in rooted:
        mask = pick(target_mask(batch, 2 + step))
        assert mask.any()
        expected = full[step][target_mask(batch, 2 + step)]
        torch.testing.assert_close(out[mask], expected, atol=2e-5, rtol=1e-4)
        if step:
            assert out.shape[1] < batch.tokens.shape[1]  # fewer queries than positions
        assert torch.equal(pick(ahead(batch.tokens, 2 + step))[mask], ahead(batch.tokens, 2 + step)[target_mask(batch, 2 + step)])


def test_soft_targets_are_the_targets_distribution_over_the_draft_vocabulary(workspace):
    from specplug_eagle.objectives import Eagle3Objective

    target, data, batch, _ = _batch_and_head(workspace)
    soft, hard = Eagle3Objective(ttt_steps=2, targets="soft"), Eagle3Objective(ttt_steps=2, targets="hard")
    assert soft.layers([-1, 0, 1, 2], None) == [0, 1, 2, -1] and hard.layers([-1, 0, 1, 2], None) == [0, 1, 2]
    head = soft.build(target, data, None)
    hard.build(target, data, None)
    states = batch.states[-1][0, :4]
    with torch.no_grad():
        restricted = target.lm_head(states.float())[:, head.token_ids]
    torch.testing.assert_close(soft._soft(head, states), torch.softmax(restricted, -1), atol=1e-5, rtol=1e-4)
    loss_soft, _ = soft.loss(head, batch)
    loss_hard, _ = hard.loss(head, batch)
    assert torch.isfinite(loss_soft) and not torch.isclose(loss_soft, loss_hard)
    with pytest.raises(ValueError, match="soft or hard"):
        Eagle3Objective(targets="mixed")


def test_bfloat16_autocast_on_cpu_trains(workspace, tmp_path):
    """The GPU route's plumbing (--device, --dtype bfloat16 autocast) on the CPU: it trains and saves."""
    lines = _train(workspace, "eagle3", tmp_path / "bf16", device="cpu", dtype="bfloat16", ttt_steps=2)
    meta = json.loads((tmp_path / "bf16" / "specplug_head.json").read_text())
    assert meta["training"]["device"] == "cpu" and meta["training"]["settings"]["dtype"] == "bfloat16"
    assert meta["training"]["last_loss"] < meta["training"]["first_loss"]
    assert lines[-1].startswith("held-out top-1")
