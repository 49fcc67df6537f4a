"""The Medusa heads module: vLLM's parameter names, identity start, export round trip, refusal."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_fingerprint, target_summary  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_medusa.medusa_heads import MedusaHeads  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=3)


def test_medusa_shapes_and_names(target):
    heads = MedusaHeads.for_target(target, num_heads=3)
    assert heads(torch.randn(5, H)).shape == (3, 5, V)
    names = set(heads.state_dict())
    assert {"blocks.0.layers.0.weight", "blocks.2.layers.0.bias", "lm_heads.2.weight"} <= names
    # residual blocks start as the identity: every head starts as the target's own LM head
    hidden = torch.randn(4, H)
    expected = target.get_output_embeddings()(hidden)
    assert torch.allclose(heads(hidden)[1], expected, atol=1e-5)


def test_save_load_round_trip_and_refusal(target, tmp_path):
    torch.manual_seed(0)
    head = MedusaHeads.for_target(target, num_heads=2)
    folder = tmp_path / "medusa"
    meta = HeadMetadata(head.method, target_summary(target), head.hidden_state_layers, V, data_manifest_id="abc")
    head.save_pretrained(folder, meta)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MedusaModel"] and config["num_heads"] == 2
    loaded, meta2 = load_head(folder, target)
    assert isinstance(loaded, MedusaHeads)
    assert meta2.data_manifest_id == "abc" and meta2.target["fingerprint"] == target_fingerprint(target)
    for name, tensor in head.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    other = tiny_llama(vocab_size=V, hidden=H, num_layers=3, seed=7)
    with pytest.raises(HeadMismatchError, match="fingerprint") as err:
        load_head(folder, other)
    assert target_fingerprint(target) in str(err.value) and target_fingerprint(other) in str(err.value)
