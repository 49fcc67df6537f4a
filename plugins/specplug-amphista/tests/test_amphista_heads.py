"""Amphista's heads and tree: the bi-directional attention among heads (the mechanism), the staged
adaptation (causal over the context, two stages), the tree, round trip and refusal."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_summary  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_amphista.heads import AmphistaHeads, stage_of  # noqa: E402
from specplug_amphista.tree import expected_value_tree, tree_tokens  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=2)


@pytest.fixture(scope="module")
def heads(target):
    torch.manual_seed(0)
    return AmphistaHeads.random_for_target(target, num_heads=4).eval()


def _units(heads, s1, s2):
    return [(s1 if stage_of(k, heads.num_heads) == 1 else s2) for k in range(heads.num_heads)]


def test_each_heads_output_depends_on_every_other_heads_state(heads):
    """The Auto-embedding Block: changing ONLY head j's MLP changes the output of every head k != j
    (bi-directional: earlier heads read later ones too). Medusa's independent heads would keep k's."""
    s1, s2 = torch.randn(3, H), torch.randn(3, H)
    with torch.no_grad():
        base = heads.head_states(s1, s2)
        for j in range(heads.num_heads):
            saved = heads.mlps[j].bias.clone()
            heads.mlps[j].bias.add_(1.0)
            changed = heads.head_states(s1, s2)
            heads.mlps[j].bias.copy_(saved)
            for k in range(heads.num_heads):
                assert not torch.allclose(base[:, k], changed[:, k]), (j, k)


def test_the_heads_read_two_adaptation_stages_causally(heads):
    assert [stage_of(k, 4) for k in range(4)] == [1, 1, 2, 2] and [stage_of(k, 3) for k in range(3)] == [1, 1, 2]
    hidden, tokens, pos = torch.randn(1, 6, H), torch.randint(0, V, (1, 6)), torch.arange(6)[None]
    with torch.no_grad():
        s1, s2 = heads.adapt_states(hidden, tokens, pos)
        other = tokens.clone()
        other[0, 4] = (other[0, 4] + 1) % V  # the token after position 4: sampled token integration
        t1, t2 = heads.adapt_states(hidden, other, pos)
    assert torch.allclose(s1[:, :4], t1[:, :4]) and torch.allclose(s2[:, :4], t2[:, :4])  # causal
    assert not torch.allclose(s1[:, 4], t1[:, 4]) and not torch.allclose(s2[:, 5], t2[:, 5])
    assert not torch.allclose(s1, s2)  # stage 2 is a further layer


def test_the_cache_gives_the_same_states_as_a_full_pass(heads):
    from transformers import DynamicCache

    hidden, tokens, pos = torch.randn(1, 7, H), torch.randint(0, V, (1, 7)), torch.arange(7)[None]
    with torch.no_grad():
        full1, full2 = heads.adapt_states(hidden, tokens, pos)
        cache = DynamicCache()
        heads.adapt_states(hidden[:, :4], tokens[:, :4], pos[:, :4], past_key_values=cache)
        part1, part2 = heads.adapt_states(hidden[:, 4:], tokens[:, 4:], pos[:, 4:], past_key_values=cache)
    assert torch.allclose(full1[:, 4:], part1, atol=1e-5) and torch.allclose(full2[:, 4:], part2, atol=1e-5)


def test_the_tree_takes_the_most_valuable_paths_and_every_node_uses_its_heads_ranks():
    paths = expected_value_tree(8, 3, 10, [0.9, 0.9, 0.9])
    assert paths[:3] == [(0,), (0, 0), (0, 0, 0)]  # sure heads: the chain first
    wide = expected_value_tree(6, 3, 10, [0.1, 0.1, 0.1])
    assert wide[:3] == [(0,), (1,), (2,)]  # unsure heads: width first
    assert all(p[:-1] in set(paths) for p in paths if len(p) > 1)
    ranked = torch.arange(30).reshape(3, 10).numpy()
    tokens, parents = tree_tokens([(0,), (1,), (0, 2)], ranked)
    assert tokens.tolist() == [0, 1, 12] and parents.tolist() == [-1, -1, 0]


def test_save_load_round_trip_and_refusal(target, heads, tmp_path):
    folder = tmp_path / "amphista"
    heads.save_pretrained(folder, HeadMetadata(heads.method, target_summary(target), heads.hidden_state_layers, V))
    loaded, meta = load_head(folder, target)
    assert isinstance(loaded, AmphistaHeads) and meta.method == "amphista" and loaded.num_heads == 4
    assert not any(name.startswith(("embed", "lm_head")) for name in loaded.state_dict())
    for name, tensor in heads.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(HeadMismatchError, match="fingerprint"):
        load_head(folder, tiny_llama(vocab_size=V, hidden=H, num_layers=2, seed=7))


def test_untrained_heads_start_as_the_targets_lm_head(target):
    heads = AmphistaHeads.for_target(target, num_heads=3).eval()
    hidden, tokens, pos = torch.randn(1, 5, H), torch.randint(0, V, (1, 5)), torch.arange(5)[None]
    with torch.no_grad():
        s1, s2 = heads.adapt_states(hidden, tokens, pos)
        logits = heads.head_logits(heads.head_states(s1[0], s2[0]))  # [5, K, V]
    expected = target.get_output_embeddings()(hidden[0])
    for k in range(3):
        assert torch.allclose(logits[:, k], expected, atol=1e-4)
