"""``specplug train``, the training kit: data shards that resume, the generic trainer's checkpoints
that resume exactly, refusal of another target's data or head, the prompt split that keeps benchmarks
out, and one command per registered objective. The objectives themselves are tested in their
plugins (specplug-eagle, specplug-medusa); the trainer tests here run the registered eagle ones."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from specplug.bench.prompts import PromptError, load_prompts, spec_bench_path  # noqa: E402
from specplug.kit.heads import HeadMismatchError, load_head  # noqa: E402
from specplug.testing import tiny_training_target, tiny_training_workspace  # noqa: E402
from specplug.train.data import DataConfig, DataError, build_data  # noqa: E402
from specplug.train.dataset import TrainingData  # noqa: E402
from specplug.train.trainer import TrainConfig, TrainError, train_head  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny random target and its training data (:func:`specplug.testing.tiny_training_workspace`)."""
    return tiny_training_workspace(tmp_path_factory.mktemp("train"))


def _train(ws, method, out, **kw):
    cfg = TrainConfig(method=method, model=str(ws["target"]), data=str(ws["data"]), out=str(out), budget="tiny", quiet=True, **kw)
    lines = []
    train_head(cfg, log=lines.append)
    return lines


def test_data_manifest_and_shards(workspace):
    manifest = json.loads((workspace["data"] / "manifest.json").read_text())
    assert manifest["complete"] and manifest["sequences"] == 24 and len(manifest["shards"]) == 5
    assert manifest["layers"] == [-1, 0, 1, 2]  # final + EAGLE-3's low/mid/high for a 3-layer target
    assert manifest["response_tokens"] > 0 and manifest["tokens"] > manifest["response_tokens"]
    shard = load_file(str(workspace["data"] / manifest["shards"][0]["file"]))
    assert shard["states.-1"].shape == (int(shard["offsets"][-1]), 64) and shard["states.-1"].dtype == torch.bfloat16
    # the stored final state is what the target's LM head reads: it reproduces the target's logits
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(workspace["target"], dtype=torch.float32)
    a, b = int(shard["offsets"][0]), int(shard["offsets"][1])
    with torch.no_grad():
        logits = model(input_ids=shard["tokens"][a:b][None]).logits[0]
    stored = model.lm_head(shard["states.-1"][a:b].float())
    assert (stored.argmax(-1) == logits.argmax(-1)).float().mean() > 0.95


def test_data_resumes_after_interruption(workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(workspace["data"], data)
    manifest = json.loads((data / "manifest.json").read_text())
    keep = data / manifest["shards"][0]["file"]
    before = keep.stat().st_mtime_ns
    lost = data / manifest["shards"][2]["file"]
    original = load_file(str(lost))
    lost.unlink()  # an interruption: one shard and the last two responses never written
    lines = (data / "responses.jsonl").read_text().splitlines()
    (data / "responses.jsonl").write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:10])
    cfg = DataConfig(**{**workspace["cfg"].__dict__, "out": str(data)})
    log = []
    build_data(cfg, log=log.append)
    assert any("2 responses (22 already done)" in line for line in log)
    assert keep.stat().st_mtime_ns == before  # finished shards are skipped
    again = load_file(str(lost))
    assert all(torch.equal(original[k], again[k]) for k in original)


def test_data_refuses_other_settings(workspace):
    cfg = DataConfig(**{**workspace["cfg"].__dict__, "max_new_tokens": 8})
    with pytest.raises(DataError, match="other settings"):
        build_data(cfg, log=lambda m: None)


def test_checkpoint_resumes_exactly(workspace, tmp_path):
    _train(workspace, "eagle3", tmp_path / "once")
    _train(workspace, "eagle3", tmp_path / "twice", max_steps=15)  # interrupted after 15 of 40 steps
    assert json.loads((tmp_path / "twice" / "specplug_head.json").read_text())["training"]["steps"] == 15
    lines = _train(workspace, "eagle3", tmp_path / "twice")
    assert lines[0].startswith("resuming eagle3 at step 15")
    once, twice = load_file(str(tmp_path / "once" / "model.safetensors")), load_file(str(tmp_path / "twice" / "model.safetensors"))
    assert all(torch.equal(once[k], twice[k]) for k in once)


def test_changed_settings_need_restart(workspace, tmp_path):
    _train(workspace, "eagle", tmp_path / "h", max_steps=2)
    with pytest.raises(TrainError, match="--restart"):
        _train(workspace, "eagle", tmp_path / "h", lr=1e-2)
    _train(workspace, "eagle", tmp_path / "h", lr=1e-2, max_steps=2, restart=True)


def test_another_targets_data_and_heads_are_refused(workspace, tmp_path):
    other = tiny_training_target(tmp_path / "other", seed=5)
    with pytest.raises(DataError, match="fingerprint"):
        TrainConfig  # noqa: B018 - the trainer checks the data's fingerprint first
        train_head(TrainConfig(method="eagle", model=str(other), data=str(workspace["data"]), out=str(tmp_path / "x"),
                               budget="tiny", quiet=True), log=lambda m: None)
    head_dir = workspace["root"] / "head-eagle"
    if not head_dir.exists():
        _train(workspace, "eagle", head_dir)
    from transformers import AutoModelForCausalLM

    with pytest.raises(HeadMismatchError, match="was trained for target") as err:
        load_head(head_dir, AutoModelForCausalLM.from_pretrained(other))
    assert "fingerprint" in str(err.value) and "specplug train" in str(err.value)


def test_training_data_needs_the_layers(workspace):
    with pytest.raises(DataError, match="layers"):
        TrainingData(workspace["data"], [5])


def test_budget_values():
    assert TrainConfig(method="eagle", budget="tiny").resolved()["steps"] == 40
    assert TrainConfig(method="eagle").resolved()["minutes"] == 60
    assert TrainConfig(method="eagle", budget="2.5").resolved()["minutes"] == 2.5
    for bad in ("soon", "-1"):
        with pytest.raises(TrainError, match="--budget"):
            TrainConfig(method="eagle", budget=bad).resolved()


def test_training_prompts_exclude_the_benchmark_prompts():
    try:
        spec_bench_path()
    except PromptError as err:
        pytest.skip(str(err))
    from specplug.train.prompts import check_disjoint, training_prompts

    train, info = training_prompts()
    assert len(train) == 415 and info["excluded_first_per_category"] == 5
    bench, _ = load_prompts("spec-bench:5")
    assert not {p.id for p in bench} & {p.id for p in train}
    assert len({p.category for p in train[:13]}) == 13  # round-robin: a small --limit covers every category
    with pytest.raises(PromptError, match="overlaps"):
        check_disjoint(6)
    with pytest.raises(PromptError, match="not for training"):
        training_prompts("spec-bench:2")


def test_train_help_says_what_each_costs():
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for word in ("data", "medusa", "eagle3", "tok/s", "--budget tiny"):
        assert word in result.output


def test_every_registered_objective_is_a_train_command():
    from click.testing import CliRunner

    from specplug.cli import cli
    from specplug.registry import get_registry

    objectives = get_registry().objectives
    assert objectives, "no plugin registers a training objective"
    listing = CliRunner().invoke(cli, ["train", "--help"]).output
    for spec in objectives.values():
        assert spec.id in listing
        result = CliRunner().invoke(cli, ["train", spec.id, "--help"])
        assert result.exit_code == 0, result.output
        assert "--budget" in result.output and f"default: {spec.default_lr:g}" in result.output
    unknown = CliRunner().invoke(cli, ["train", "no-such-objective"])
    assert unknown.exit_code != 0 and "No such command" in unknown.output


def test_unknown_method_is_a_train_error():
    with pytest.raises(TrainError, match="no-such-objective"):
        TrainConfig(method="no-such-objective").resolved()

