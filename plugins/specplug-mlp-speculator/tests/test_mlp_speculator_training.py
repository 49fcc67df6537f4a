"""``specplug train mlp_speculator`` on a tiny random target: the held-out loss falls, one accuracy
per stage, and the stage count reaches the exported speculator."""

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


def test_training_lowers_the_loss_and_writes_a_speculator_that_loads(workspace):
    from transformers import AutoModelForCausalLM

    out = workspace["root"] / "mlp"
    lines = []
    train_head(TrainConfig(method="mlp_speculator", model=str(workspace["target"]), data=str(workspace["data"]),
                           out=str(out), budget="tiny", quiet=True, n_predict=2), log=lines.append)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    head, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert head.n_predict == 2 and len(training["held_out"]["accuracy"]) == 2 and meta.extra == {"n_predict": 2}


def test_the_command_carries_its_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "mlp_speculator", "--help"])
    assert result.exit_code == 0 and "--n-predict" in result.output
