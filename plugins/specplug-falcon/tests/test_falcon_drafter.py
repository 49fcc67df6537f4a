"""FALCON's drafter: the relaxed causal mask, k tokens from one forward, round trip and refusal."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import HeadMetadata, HeadMismatchError, load_head, target_summary  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402
from specplug_falcon.drafter import FalconDrafter, block_bias  # noqa: E402
from specplug_falcon.objective import FalconObjective  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=2)


@pytest.fixture(scope="module")
def drafter(target):
    torch.manual_seed(0)
    return FalconDrafter.for_target(target, block_size=2).eval()


def test_the_relaxed_causal_mask_opens_each_block_to_its_end():
    allowed = (block_bias(5, 2, past=1) == 0).int().tolist()
    assert allowed == [[1, 1, 1, 0, 0, 0],  # block [0, 1]: both see the cached key and each other
                       [1, 1, 1, 0, 0, 0],
                       [1, 1, 1, 1, 1, 0],  # block [2, 3]
                       [1, 1, 1, 1, 1, 0],
                       [1, 1, 1, 1, 1, 1]]  # block [4]


def test_one_forward_of_a_block_gives_k_tokens_that_read_the_whole_block(drafter):
    """Position 0 of a block reads position 1's input (bi-directional inside the block) but no later
    block: the k outputs of one forward are drafted together, semi-autoregressively across blocks."""
    ids, feats, pos = torch.randint(0, V, (1, 6)), torch.randn(1, 6, H), torch.arange(6)[None]
    with torch.no_grad():
        base = drafter(ids, feats, pos)
        inside = feats.clone()
        inside[0, 3] += 1.0  # the second position of block [2, 3]
        changed = drafter(ids, inside, pos)
    assert not torch.allclose(base[0, 2], changed[0, 2])  # its block partner reads it
    assert torch.allclose(base[0, :2], changed[0, :2], atol=1e-6)  # an earlier block does not
    assert drafter.logits(base[0, 2:4]).shape == (2, V)  # k = 2 tokens from this one forward


def test_block_size_one_is_refused():
    with pytest.raises(ValueError, match="k >= 2"):
        FalconObjective(block_size=1)


def test_save_load_round_trip_and_refusal(target, drafter, tmp_path):
    folder = tmp_path / "falcon"
    drafter.save_pretrained(folder, HeadMetadata(drafter.method, target_summary(target), drafter.hidden_state_layers, V))
    loaded, meta = load_head(folder, target)
    assert isinstance(loaded, FalconDrafter) and loaded.block_size == 2 and meta.method == "falcon"
    for name, tensor in drafter.state_dict().items():
        if not name.startswith("rotary_emb."):
            assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(HeadMismatchError, match="fingerprint"):
        load_head(folder, tiny_llama(vocab_size=V, hidden=H, num_layers=2, seed=7))
