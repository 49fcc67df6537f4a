"""``specplug train amphista`` on a tiny random target: training lowers the loss and the exported heads load."""

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


def test_training_lowers_the_loss_and_writes_heads_that_load(workspace):
    from transformers import AutoModelForCausalLM

    out = workspace["root"] / "amphista"
    lines = []
    train_head(TrainConfig(method="amphista", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, num_heads=3), log=lines.append)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    heads, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert heads.num_heads == 3 and meta.extra["num_heads"] == 3


def test_the_command_carries_its_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "amphista", "--help"])
    assert result.exit_code == 0 and "--num-heads" in result.output
