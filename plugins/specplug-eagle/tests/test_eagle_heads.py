"""The EAGLE and EAGLE-3 head modules: layouts, KV cache use (incremental = whole-sequence), tree
masks, export round trip (vLLM's and the speculators format), refusal of another target."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import DynamicCache  # noqa: E402

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_fingerprint, target_summary  # noqa: E402
from specplug.kit.target import tree_bias  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_eagle.eagle3_head import Eagle3Head  # noqa: E402
from specplug_eagle.eagle_head import EagleHead  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=3)


def _heads(target):
    torch.manual_seed(0)
    eagle = EagleHead.for_target(target)
    eagle3 = Eagle3Head.for_target(target, draft_token_ids=range(0, V, 2), aux_layers=[0, 1, 2])
    for head in (eagle, eagle3):  # random, non-trivial weights
        with torch.no_grad():
            for p in head.parameters():
                p.normal_(0, 0.3)
    return eagle, eagle3


def test_eagle_layouts(target):
    eagle, eagle3 = _heads(target)
    assert "layers.0.input_layernorm.weight" not in eagle.state_dict()
    assert eagle.fc.weight.shape == (H, 2 * H)
    assert not any(name.startswith(("embed_tokens", "lm_head")) for name in eagle.state_dict())
    assert eagle3.fc.weight.shape == (H, 3 * H)
    assert eagle3.layers[0].self_attn.q_proj.weight.shape[1] == 2 * H
    assert eagle3.lm_head.weight.shape == (V // 2, H)
    assert torch.equal(eagle3.token_ids, torch.arange(0, V, 2))
    assert int(eagle3.t2d.sum()) == V // 2 and eagle3.t2d[2] and not eagle3.t2d[3]


@pytest.mark.parametrize("which", ["eagle", "eagle3"])
def test_incremental_equals_whole_sequence(target, which):
    """Feeding one token at a time through a DynamicCache gives the whole-sequence (causal) outputs;
    cropping the cache rolls back exactly."""
    head = dict(zip(("eagle", "eagle3"), _heads(target)))[which]
    width = 3 * H if which == "eagle3" else H
    ids, feats, pos = torch.randint(0, V, (6,)), torch.randn(6, width), torch.arange(6)
    with torch.no_grad():
        whole = head(ids, feats, pos)
        cache = DynamicCache()
        first = head(ids[:4], feats[:4], pos[:4], cache)
        rest = [head(ids[i : i + 1], feats[i : i + 1], pos[i : i + 1], cache) for i in (4, 5)]
        assert torch.allclose(torch.cat([first, *rest]), whole, atol=1e-5)
        for layer in cache.layers:  # roll back two positions and redo them
            layer.keys, layer.values = layer.keys[..., :4, :], layer.values[..., :4, :]
        again = head(ids[4:], feats[4:], pos[4:], cache)
        assert torch.allclose(again, whole[4:], atol=1e-5)


def test_tree_mask_matches_chains(target):
    """Two sibling branches scored in one tree forward equal each branch scored as its own chain."""
    eagle, _ = _heads(target)
    ctx_ids, ctx_feats = torch.randint(0, V, (4,)), torch.randn(4, H)
    node_ids, node_feats = torch.randint(0, V, (3,)), torch.randn(3, H)
    parents = [-1, -1, 0]  # two children of the root, one grandchild under the first
    with torch.no_grad():
        cache = DynamicCache()
        eagle(ctx_ids, ctx_feats, torch.arange(4), cache)
        mask = tree_bias(4, 0, __import__("numpy").array(parents))  # nodes only, past = 4
        tree = eagle(node_ids, node_feats, torch.tensor([4, 4, 5]), cache, mask[None, None])
        for path in ([0, 2], [1]):
            chain = DynamicCache()
            eagle(ctx_ids, ctx_feats, torch.arange(4), chain)
            out = eagle(node_ids[path], node_feats[path], torch.arange(4, 4 + len(path)), chain)
            assert torch.allclose(out, tree[path], atol=1e-5)


def test_save_load_round_trip_and_refusal(target, tmp_path):
    for head in _heads(target):
        folder = tmp_path / head.method
        meta = HeadMetadata(head.method, target_summary(target), head.hidden_state_layers, V, data_manifest_id="abc")
        head.save_pretrained(folder, meta)
        config = json.loads((folder / "config.json").read_text())
        loaded, meta2 = load_head(folder, target)
        assert meta2.data_manifest_id == "abc" and meta2.target["fingerprint"] == target_fingerprint(target)
        for name, tensor in head.state_dict().items():
            assert torch.equal(tensor, loaded.state_dict()[name]), name
        if head.method == "eagle3":
            spec = head.save_speculators(tmp_path / "speculators", meta, verifier="TARGET", num_speculative_tokens=5)
            spec_config = json.loads((spec / "config.json").read_text())
            assert spec_config["speculators_model_type"] == "eagle3"
            assert spec_config["speculators_config"]["proposal_methods"][0]["speculative_tokens"] == 5
            again, _ = load_head(spec, target)
            assert all(torch.equal(t, again.state_dict()[n]) for n, t in head.state_dict().items())
            assert config["architectures"] == ["LlamaForCausalLMEagle3"]
            assert config["eagle_aux_hidden_state_layer_ids"] == [0, 1, 2] and config["draft_vocab_size"] == V // 2
        other = tiny_llama(vocab_size=V, hidden=H, num_layers=3, seed=7)
        with pytest.raises(HeadMismatchError, match="fingerprint") as err:
            load_head(folder, other)
        assert target_fingerprint(target) in str(err.value) and target_fingerprint(other) in str(err.value)
