"""EAGLE-2's dynamic tree (specplug_eagle.tree): the worked example, then properties against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import Draft
from specplug.testing import examples
from specplug_eagle.tree import grow_dynamic_tree


def table_expand(children: dict[tuple[int, ...], list[tuple[int, float]]], calls: list):
    """An ``expand`` callback over a fixed table: ``children[path of tokens]`` = [(token, prob), ...] best first."""

    def expand(frontier, tokens, parents):
        calls.append(list(frontier))
        rows_t, rows_p = [], []
        for node in frontier:
            path = []
            while node >= 0:
                path.append(tokens[node])
                node = parents[node]
            kids = children[tuple(path[::-1])]
            rows_t.append([t for t, _ in kids])
            rows_p.append([math.log(p) for _, p in kids])
        return np.array(rows_t), np.array(rows_p)

    return expand


A, B, C, D, E, F = 10, 11, 12, 13, 14, 15


def test_worked_example_from_the_module_docstring():
    table = {(): [(A, 0.6), (B, 0.3)], (A,): [(C, 0.9), (D, 0.05)], (B,): [(E, 0.5), (F, 0.4)]}
    calls = []
    tree = grow_dynamic_tree(table_expand(table, calls), top_k=2, depth=2, size=3)
    # a (0.6), b (0.3) are the root's children; ac (0.54) is kept, ad (0.03), be (0.15), bf (0.12) are not
    assert tree.token_ids.tolist() == [A, B, C]
    assert tree.parents.tolist() == [-1, -1, 0]
    assert np.allclose(np.exp(tree.scores), [0.6, 0.3, 0.54])
    assert calls == [[-1], [0, 1]]  # the root, then both depth-1 nodes in one call
    assert tree.generated == 6 and tree.expansions == 2
    draft = Draft(tree.token_ids, tree.parents)
    assert draft.path_to(2) == [0, 2]


def test_only_the_top_k_of_a_depth_are_expanded():
    # depth 2 has four candidates; top_k=2 expands only the best two (ac 0.54, be 0.15), not ad or bf.
    table = {(): [(A, 0.6), (B, 0.3)], (A,): [(C, 0.9), (D, 0.05)], (B,): [(E, 0.5), (F, 0.4)],
             (A, C): [(1, 0.5), (2, 0.4)], (B, E): [(3, 0.9), (4, 0.1)]}
    calls = []
    tree = grow_dynamic_tree(table_expand(table, calls), top_k=2, depth=3, size=4)
    assert calls[2] == [2, 4]  # node ids of ac and be in creation order (a, b, ac, ad, be, bf, ...)
    # kept: a .6, ac .54, b .3, ac1 .27
    assert tree.token_ids.tolist() == [A, B, C, 1]
    assert tree.parents.tolist() == [-1, -1, 0, 2]


def test_top_k_one_is_a_greedy_chain():
    table = {(): [(5, 0.5)], (5,): [(6, 0.9)], (5, 6): [(7, 0.2)]}
    tree = grow_dynamic_tree(table_expand(table, []), top_k=1, depth=3, size=3)
    assert tree.token_ids.tolist() == [5, 6, 7] and tree.parents.tolist() == [-1, 0, 1]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="top_k, depth and size"):
        grow_dynamic_tree(lambda *a: None, top_k=0, depth=2, size=3)


@st.composite
def random_tables(draw):
    top_k = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 10_000))
    return top_k, depth, seed


def random_expand(top_k: int, seed: int):
    """Children drawn from a random distribution seeded by the node's path (so any path has a fixed answer)."""

    def expand(frontier, tokens, parents):
        rows_t, rows_p = [], []
        for node in frontier:
            path = []
            while node >= 0:
                path.append(tokens[node])
                node = parents[node]
            rng = np.random.default_rng([seed, *path[::-1]])
            probs = rng.dirichlet(np.full(6, 0.5))
            order = np.argsort(-probs, kind="stable")[:top_k]
            rows_t.append(order + 100 * (len(path) + 1))
            rows_p.append(np.log(np.maximum(probs[order], 1e-300)))
        return np.array(rows_t), np.array(rows_p)

    return expand


@settings(max_examples=examples(150), deadline=None)
@given(random_tables(), st.integers(1, 30))
def test_the_kept_nodes_are_a_tree_of_the_best_candidates(table, size):
    top_k, depth, seed = table
    tree = grow_dynamic_tree(random_expand(top_k, seed), top_k, depth, size)
    n = len(tree.token_ids)
    assert n == min(size, tree.generated)
    assert np.all(tree.parents < np.arange(n))  # parents first: a valid Draft
    Draft(tree.token_ids, tree.parents)
    for i, p in enumerate(tree.parents.tolist()):  # scores: parent + log p <= parent
        if p >= 0:
            assert tree.scores[i] <= tree.scores[p]
    # brute force: regenerate every candidate and check the kept ones are the `size` best
    all_scores = []
    frontier_paths = [((), 0.0)]
    expand = random_expand(top_k, seed)
    for level in range(depth):
        level_cands = []
        for path, score in frontier_paths:
            toks, parents = list(path), list(range(-1, len(path) - 1))
            t, lp = expand([len(path) - 1] if path else [-1], toks, parents)
            for tok, l in zip(t[0].tolist(), lp[0].tolist()):
                level_cands.append((path + (tok,), score + min(l, 0.0)))
        all_scores += [s for _, s in level_cands]
        level_cands.sort(key=lambda c: -c[1])
        frontier_paths = level_cands[:top_k]
    best = sorted(all_scores, reverse=True)[:size]
    assert np.allclose(sorted(tree.scores.tolist(), reverse=True), best)
