"""``specplug train hydra`` on a tiny random target: both objectives lower the held-out loss, the
teacher objective is the target's distribution, and the exported heads load back."""

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


@pytest.mark.parametrize("objective", ["teacher", "hard"])
def test_training_lowers_the_loss_and_writes_heads_that_load(workspace, objective):
    from transformers import AutoModelForCausalLM

    out = workspace["root"] / f"hydra-{objective}"
    lines = []
    train_head(TrainConfig(method="hydra", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, num_heads=3, num_layers=2, objective=objective), log=lines.append)
    assert lines[-1].startswith("held-out top-1 accuracy by draft position")
    heads, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert heads.num_heads == 3 and heads.num_layers == 2 and meta.extra["objective"] == objective


def test_the_teacher_is_the_targets_distribution_of_the_token(workspace):
    """The teacher objective's soft target for head k at root t is softmax(lm_head(h_{t+1+k})): with a
    one-hot teacher equal to the data's token it would be the hard loss."""
    from transformers import AutoModelForCausalLM

    from specplug.train.dataset import TrainingData
    from specplug_hydra.objective import HydraObjective

    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    data = TrainingData(workspace["data"], [-1])
    batch = data.batch(data.train[:2], 64)
    teacher, hard = HydraObjective(num_heads=2, num_layers=1), HydraObjective(num_heads=2, num_layers=1, objective="hard")
    heads = teacher.build(target, data, None)
    hard.build(target, data, None)
    for (k, logits, tokens, feats), _ in zip(teacher._per_head(heads, batch), range(2)):
        probs = teacher._teacher(feats)
        expected = torch.softmax(target.lm_head(feats), -1)
        assert torch.allclose(probs, expected, atol=1e-6)
        assert (probs.argmax(-1) == tokens).float().mean() > 0.9  # self-distilled data: the target's own tokens
    t_loss, _ = teacher.loss(heads, batch)
    h_loss, _ = hard.loss(heads, batch)
    assert not torch.isclose(t_loss, h_loss)


def test_the_command_carries_its_own_options():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "hydra", "--help"])
    assert result.exit_code == 0
    assert "--num-heads" in result.output and "--objective" in result.output and "teacher" in result.output
