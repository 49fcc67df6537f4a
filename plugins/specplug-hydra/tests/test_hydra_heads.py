"""Hydra's heads and tree: sequential dependence (the mechanism), identity start, round trip, refusal."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_summary  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_hydra.hydra_heads import HydraHeads  # noqa: E402
from specplug_hydra.tree import SPARSE_TREE_63, draft_tree, tree_paths  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=2)


def test_each_head_depends_on_the_tokens_drafted_before_it(target):
    """Hydra's mechanism: head k's guess changes with the token at t + 1 + k (and every earlier one);
    head 0 reads only the root. Medusa's heads would ignore the tokens altogether."""
    torch.manual_seed(0)
    heads = HydraHeads.random_for_target(target, num_heads=3)
    hidden, tokens = torch.randn(4, H), torch.randint(0, V, (4, 3))
    base = heads(hidden, tokens)
    for j in range(3):
        other = tokens.clone()
        other[:, j] = (other[:, j] + 1) % V
        changed = heads(hidden, other)
        for k in range(3):
            assert torch.allclose(base[k], changed[k]) == (k < j), (j, k)  # head k reads tokens 0..k
    assert heads.head_logits(2, hidden, tokens).shape == (4, V)


def test_an_untrained_head_is_the_targets_lm_head(target):
    heads = HydraHeads.for_target(target, num_heads=2)
    hidden = torch.randn(3, H)
    expected = target.get_output_embeddings()(hidden)
    assert torch.allclose(heads(hidden, torch.randint(0, V, (3, 2)))[1], expected, atol=1e-5)


def test_the_tree_is_drafted_given_each_parents_path():
    paths = tree_paths(8, 3, 10)
    assert paths == list(SPARSE_TREE_63[:8])
    calls = []

    def guesses(depth, prefixes, top_k):  # a "head" whose guesses are a function of the whole prefix
        calls.append((depth, prefixes))
        return np.array([[100 * depth + 10 * sum(p) + r for r in range(top_k)] for p in prefixes])

    tokens, parents = draft_tree(paths, guesses)
    assert parents.tolist() == [-1, 0, -1, 0, -1, 1, 2, 0]
    assert calls[1] == (1, [(tokens[0],), (tokens[2],)])  # depth 1 expands each parent with its own token
    # paths (0,) (0,0) (1,) (0,1) (2,) (0,0,0) (1,0) (0,2): rank 0 under parent 0 is 100, under parent 1 is 110
    assert tokens.tolist() == [0, 100, 1, 101, 2, 200 + 10 * 100, 110, 102]
    assert calls[2] == (2, [(tokens[0], tokens[1])])


def test_save_load_round_trip_and_refusal(target, tmp_path):
    torch.manual_seed(0)
    heads = HydraHeads.random_for_target(target, num_heads=2)
    folder = tmp_path / "hydra"
    heads.save_pretrained(folder, HeadMetadata(heads.method, target_summary(target), heads.hidden_state_layers, V))
    loaded, meta = load_head(folder, target)
    assert isinstance(loaded, HydraHeads) and meta.method == "hydra"
    assert not any(name.startswith("embed") for name in loaded.state_dict())  # the target's embeddings are not saved
    for name, tensor in heads.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(HeadMismatchError, match="fingerprint"):
        load_head(folder, tiny_llama(vocab_size=V, hidden=H, num_layers=2, seed=7))
