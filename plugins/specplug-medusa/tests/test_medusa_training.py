"""``specplug train medusa`` on a tiny random target: the objective lowers the held-out loss, one
accuracy per head, and the head count reaches the exported head and its metadata."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import load_head  # noqa: E402
from specplug.testing import repetitive_prompts, tiny_llama  # noqa: E402
from specplug.train.data import DataConfig, build_data  # noqa: E402
from specplug.train.trainer import TrainConfig, train_head  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny random Llama (vocab 128, 3 layers) with SmolLM2's tokenizer files (prompts are token ids,
    the tokenizer only supplies EOS) and training data made by the reference engine."""
    from specplug.models import fetch_smollm2

    root = tmp_path_factory.mktemp("train")
    target = root / "target"
    tiny_llama(vocab_size=128, num_layers=3, hidden=64, seed=0, eos_token_id=2).save_pretrained(str(target), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (fetch_smollm2() / name).exists():
            shutil.copy(fetch_smollm2() / name, target / name)
    prompts = root / "prompts.jsonl"
    rows = [{"id": f"p{i}", "category": f"c{i % 3}", "token_ids": ids} for i, ids in enumerate(repetitive_prompts(24, 128, seed=3))]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_data(DataConfig(model=str(target), out=str(root / "data"), prompts=str(prompts), max_new_tokens=24,
                          engine="reference", shard_size=5, quiet=True), log=lambda m: None)
    return {"root": root, "target": target, "data": root / "data"}


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
    heads = num_heads or 4
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
