"""``specplug train falcon`` on a tiny random target: CSGD lowers the loss, glanced inputs are the
targets (coupled: feature and token), the drafter's files load back."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import load_head  # noqa: E402
from specplug.testing import tiny_training_workspace  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tiny_training_workspace(tmp_path_factory.mktemp("train"))


def test_training_lowers_the_loss_and_writes_a_drafter_that_loads(workspace):
    from transformers import AutoModelForCausalLM

    out = workspace["root"] / "falcon"
    lines = []
    train_head(TrainConfig(method="falcon", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, block_size=2), log=lines.append)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    drafter, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert drafter.block_size == 2 and meta.extra["glancing"] is True
    assert not any(name.startswith(("embed", "lm_head")) for name in drafter.state_dict())  # the target's, not saved


def test_glanced_inputs_are_the_targets_feature_and_token_at_the_revealed_positions(workspace):
    from transformers import AutoModelForCausalLM

    from specplug.train.dataset import TrainingData
    from specplug_falcon.objective import FalconObjective

    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    data = TrainingData(workspace["data"], [-1])
    batch = data.batch(data.train[:3], 64)
    objective = FalconObjective(block_size=2)
    torch.manual_seed(0)
    drafter = objective.build(target, data, None)  # untrained: nearly every guess is wrong
    tokens_in, feats_in, reveal = objective.glanced_inputs(drafter, batch, generator=None, ratio=0.45)
    plain_tokens, feats, target_feats, target_tokens, mask = objective.targets(batch)
    assert reveal.any() and (reveal <= mask).all()
    assert torch.equal(tokens_in[reveal], target_tokens[reveal]) and torch.equal(feats_in[reveal], target_feats[reveal])
    assert torch.equal(tokens_in[~reveal], plain_tokens[~reveal]) and torch.equal(feats_in[~reveal], feats[~reveal])
    off = FalconObjective(block_size=2, glancing=False)
    assert not off.glanced_inputs(drafter, batch, ratio=0.45)[2].any()


def test_the_command_carries_its_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "falcon", "--help"])
    assert result.exit_code == 0
    assert "--block-size" in result.output and "--glancing" in result.output
