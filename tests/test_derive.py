"""``specplug models derive``: a layer subset of a model as a plain HF folder (specplug/models/derive.py)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from specplug.cli import cli
from specplug.models.derive import DeriveError, derive_model, layers_label, parse_layers
from specplug.kit.drafting import model_view
from specplug.testing import tiny_llama


def _save(path, tied: bool, num_layers: int = 4):
    model = tiny_llama(vocab_size=80, seed=5, num_layers=num_layers)
    if tied:
        from transformers import LlamaForCausalLM

        config = model.config
        config.tie_word_embeddings = True
        torch.manual_seed(5)
        model = LlamaForCausalLM(config).eval()
    model.save_pretrained(str(path))
    return model


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def _manual_subset_logits(model, keep, ids):
    """embeddings -> the kept layers in order -> final norm -> head, by hand."""
    x = torch.tensor([ids])
    with torch.inference_mode():
        h = model.model.embed_tokens(x)
        pos = torch.arange(len(ids))[None]
        emb = model.model.rotary_emb(h, position_ids=pos)
        mask = torch.full((len(ids), len(ids)), float("-inf")).triu(1)[None, None]
        for i in keep:
            h = model.model.layers[i](h, attention_mask=mask, position_embeddings=emb, position_ids=pos)
        return model.lm_head(model.model.norm(h))[0]


@pytest.mark.parametrize("tied", [False, True])
def test_a_derived_folder_holds_the_kept_layers_renumbered_and_computes_the_subset(tmp_path, tied):
    from transformers import AutoModelForCausalLM

    base = _save(tmp_path / "base", tied)
    out = derive_model(tmp_path / "base", "0,2-3", tmp_path / "draft")
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and config["tie_word_embeddings"] is tied
    with safe_open(str(out / "model.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())
        assert torch.equal(fh.get_tensor("model.layers.1.mlp.up_proj.weight"), base.model.layers[2].mlp.up_proj.weight)
    assert {k.split(".")[2] for k in keys if k.startswith("model.layers.")} == {"0", "1", "2"}
    assert ("lm_head.weight" in keys) is not tied  # a tied head is the embedding, stored once
    draft = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    if tied:
        assert draft.lm_head.weight.data_ptr() == draft.model.embed_tokens.weight.data_ptr()
    ids = [3, 17, 4, 60, 2, 9]
    assert torch.allclose(_logits(draft, ids), _manual_subset_logits(base, [0, 2, 3], ids), atol=1e-5)
    assert torch.allclose(_logits(draft, ids), _logits(model_view(base, [0, 2, 3]), ids), atol=1e-5)
    record = json.loads((out / "specplug-derived.json").read_text())
    assert record["layers"] == [0, 2, 3] and record["base_fingerprint"].startswith("sha256:")


def test_deriving_again_reuses_the_folder_and_a_foreign_folder_is_refused(tmp_path):
    _save(tmp_path / "base", tied=False)
    out = derive_model(tmp_path / "base", "0-1", tmp_path / "draft")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert derive_model(tmp_path / "base", [0, 1], tmp_path / "draft") == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(DeriveError, match="holds something else"):
        derive_model(tmp_path / "base", "0", tmp_path / "draft")


def test_the_default_folder_is_in_the_cache_keyed_by_fingerprint_and_layers(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path / "cache"))
    _save(tmp_path / "base", tied=False)
    out = derive_model(tmp_path / "base", "1-3")
    assert out.parent == tmp_path / "cache" / "models" / "derived" and out.name.startswith("base-layers-1-3-")
    other = derive_model(tmp_path / "base", "0")
    assert other != out


def test_layer_specs():
    assert parse_layers("0-3,29", 30) == [0, 1, 2, 3, 29]
    assert parse_layers("4, 0,2", 30) == [0, 2, 4]
    assert layers_label([0, 1, 2, 3, 29]) == "0-3_29" and layers_label([0, 2, 4]) == "0_2_4"
    for spec, words in [("", "empty"), ("0-", "not a layer id"), ("x", "not a layer id"), ("3-1", "runs backwards"),
                        ("0-30", "layer 30 is out of range; the model has 30 layers"), ("1,0-2", "given twice")]:
        with pytest.raises(DeriveError, match=words):
            parse_layers(spec, 30)


def test_the_cli_prints_the_folder_and_explains_errors(tmp_path):
    _save(tmp_path / "base", tied=False, num_layers=2)
    runner = CliRunner()
    ok = runner.invoke(cli, ["models", "derive", str(tmp_path / "base"), "--layers", "1", "--out", str(tmp_path / "d")])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1] == str(tmp_path / "d")
    bad = runner.invoke(cli, ["models", "derive", str(tmp_path / "base"), "--layers", "0-5", "--out", str(tmp_path / "e")])
    assert bad.exit_code != 0 and "the model has 2 layers (0-1)" in bad.output
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    wrong = runner.invoke(cli, ["models", "derive", str(tmp_path / "gpt"), "--layers", "0"])
    assert wrong.exit_code != 0 and "'gpt2' model" in wrong.output and "Llama-style" in wrong.output
    missing = runner.invoke(cli, ["models", "derive", str(tmp_path / "nothing"), "--layers", "0"])
    assert missing.exit_code != 0 and "not a local model folder" in missing.output


def test_a_path_that_would_switch_vllm_to_another_method_is_refused(tmp_path):
    _save(tmp_path / "base", tied=False, num_layers=2)
    with pytest.raises(DeriveError, match="'eagle3'"):
        derive_model(tmp_path / "base", "0", tmp_path / "my-eagle3-draft")
