"""CSGD's glancing step: how many inputs it reveals, where, and with what (the mechanism of FALCON's training)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from specplug_falcon.glancing import GLANCE_END, GLANCE_START, glance_positions, glance_ratio  # noqa: E402


def _blocks(reveal, k):
    """The revealed positions of each block, as offsets inside it."""
    out = {}
    for p in reveal.nonzero().flatten().tolist():
        out.setdefault(p // k, []).append(p % k)
    return out


def test_k2_reveals_floor_ratio_times_errors_block_starts():
    mask = torch.zeros(1, 40, dtype=torch.bool)
    mask[0, 4:36] = True  # 16 whole blocks of 2 carry loss
    wrong = mask.clone()
    wrong[0, 4:14] = False  # 22 misses
    reveal = glance_positions(wrong, mask, k=2, ratio=0.45, generator=torch.Generator().manual_seed(0))
    assert int(reveal.sum()) == int(0.45 * 22)  # N = floor(lambda * Hamming distance)
    assert (reveal <= mask).all()  # only positions that carry loss
    assert all(offsets == [0] for offsets in _blocks(reveal[0], 2).values())  # each block's first position


@pytest.mark.parametrize("seed", range(5))
def test_k4_reveals_a_strict_prefix_of_n_over_k_blocks(seed):
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, 8:60] = True
    wrong = mask.clone()
    reveal = glance_positions(wrong, mask, k=4, ratio=0.4, generator=torch.Generator().manual_seed(seed))
    for row in range(2):
        blocks = _blocks(reveal[row], 4)
        assert len(blocks) == int(0.4 * 52) // 4  # N // k blocks
        for offsets in blocks.values():
            assert offsets == list(range(len(offsets))) and 1 <= len(offsets) <= 3  # a prefix, never the whole block


def test_nothing_is_revealed_without_errors_or_outside_the_loss():
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[0, 2:18] = True
    assert not glance_positions(torch.zeros_like(mask), mask, 2, 0.45).any()
    wrong = torch.ones_like(mask)
    assert not glance_positions(wrong, torch.zeros_like(mask), 2, 0.45).any()


def test_the_ratio_decays_from_045_to_01():
    assert glance_ratio(0, 100) == pytest.approx(GLANCE_START) == pytest.approx(0.45)
    assert glance_ratio(50, 100) == pytest.approx(0.275)
    assert glance_ratio(500, 100) == pytest.approx(GLANCE_END) == pytest.approx(0.1)
