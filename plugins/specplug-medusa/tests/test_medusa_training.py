"""``specplug train medusa`` on a tiny random target: the objective lowers the held-out loss, one
accuracy per head, and the head count reaches the exported head and its metadata."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import load_head  # noqa: E402
from specplug.testing import tiny_training_workspace  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny random target and its training data (:func:`specplug.testing.tiny_training_workspace`)."""
    return tiny_training_workspace(tmp_path_factory.mktemp("train"))


@pytest.mark.parametrize("num_heads", [None, 3])
def test_training_lowers_the_held_out_loss(workspace, num_heads):
    out = workspace["root"] / f"head-medusa-{num_heads}"
    options = {} if num_heads is None else {"num_heads": num_heads}
    lines = []
    train_head(TrainConfig(method="medusa", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, **options), log=lines.append)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    from transformers import AutoModelForCausalLM

    head, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    heads = num_heads or 5  # the default: the positions of vLLM's k=5 chain
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    accuracy = training["held_out"]["accuracy"]
    assert len(accuracy) == heads and all(0.0 <= a <= 1.0 for a in accuracy)
    assert training["last_loss"] < training["first_loss"]
    assert head.num_heads == heads and meta.extra == {"num_heads": heads} and training["settings"]["num_heads"] == heads
    assert meta.data_manifest_id == json.loads((workspace["data"] / "manifest.json").read_text())["id"]


def test_the_command_carries_its_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "medusa", "--help"])
    assert result.exit_code == 0
    assert "--num-heads" in result.output and "default: 0.001" in result.output
