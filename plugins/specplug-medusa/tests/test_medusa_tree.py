"""Medusa's sparse tree (specplug_medusa.tree): the paper's paths, scaling, and the tree they make."""

from __future__ import annotations

import numpy as np
import pytest

from specplug.protocols import Draft
from specplug_medusa.tree import MEDUSA_TREE_63, candidate_tree, tree_paths


def test_the_papers_tree_has_63_distinct_paths_and_every_prefix_is_a_tree():
    assert len(MEDUSA_TREE_63) == 63 and len(set(MEDUSA_TREE_63)) == 63
    seen = set()
    for path in MEDUSA_TREE_63:
        assert len(path) == 1 or path[:-1] in seen, f"{path} comes before its parent"
        seen.add(path)
    assert max(len(p) for p in MEDUSA_TREE_63) == 4 and max(max(p) for p in MEDUSA_TREE_63) == 9


def test_worked_example_from_the_module_docstring():
    paths = [(0,), (0, 0), (1,), (0, 1)]
    tokens, parents = candidate_tree(np.array([[7, 8], [4, 5]]), paths)
    assert tokens.tolist() == [7, 4, 8, 5] and parents.tolist() == [-1, 0, -1, 0]


def test_scaling_takes_a_prefix_and_drops_paths_the_heads_cannot_fill():
    assert tree_paths(5, 4, 10) == [(0,), (0, 0), (1,), (0, 1), (2,)]
    one_head = tree_paths(63, 1, 10)
    assert one_head == [(r,) for r in range(10)]  # only head 0's guesses, in the paper's order
    two_heads_top3 = tree_paths(63, 2, 3)
    assert all(len(p) <= 2 and max(p) < 3 for p in two_heads_top3)
    assert len(two_heads_top3) == 3 + 9  # every 1- and 2-step path with ranks < 3 is in the paper's tree


@pytest.mark.parametrize("size", [1, 4, 16, 63])
def test_the_candidate_tree_is_a_valid_draft_with_the_right_tokens(size):
    rng = np.random.default_rng(size)
    topk = rng.integers(0, 1000, size=(4, 10))
    paths = tree_paths(size, 4, 10)
    tokens, parents = candidate_tree(topk, paths)
    draft = Draft(tokens, parents)
    assert len(draft) == size
    for j, path in enumerate(paths):  # node j's root-to-node tokens are each head's guess of the path's rank
        assert [int(draft.token_ids[n]) for n in draft.path_to(j)] == [int(topk[h, r]) for h, r in enumerate(path)]
