"""The drafting kit's tree builders (specplug.kit.trees) and the model top-k drafter (tree_drafting)."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from specplug.kit.trees import (
    AcceptanceProfile,
    Expansion,
    ProfileMismatchError,
    TopKUnavailableError,
    TreeShape,
    adaptive_width_tree,
    best_first_tree,
    dynamic_tree,
    estimated_acceptance,
    expected_accepted,
    instantiate_shape,
    opt_tree,
    require_topk,
    sequoia_shape,
    sequoia_value,
)


class PathDrafter:
    """A made-up drafter: each path's next-token distribution is a fixed random function of the path."""

    def __init__(self, vocab: int = 12, seed: int = 0, sharp: float = 2.0) -> None:
        self.vocab, self.seed, self.sharp, self.max_k, self.calls = vocab, seed, sharp, vocab, 0

    def dist(self, path: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng(abs(hash((self.seed,) + path)) % (2**32))
        logits = rng.normal(size=self.vocab) * self.sharp
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def path(self, node, token_ids, parents):
        out = []
        while node >= 0:
            out.append(int(token_ids[node]))
            node = int(parents[node])
        return tuple(out[::-1])

    def expand(self, nodes, token_ids, parents, k, with_dists=False):
        self.calls += 1
        tokens, probs = [], []
        for node in nodes:
            p = self.dist(self.path(node, token_ids, parents))
            order = np.argsort(-p, kind="stable")[:k]
            tokens.append(order)
            probs.append(p[order])
        return Expansion(np.asarray(tokens), np.asarray(probs))


@functools.lru_cache(maxsize=None)
def plane_trees(n: int) -> tuple:
    """Every shape of exactly ``n`` nodes, as sets of rank paths (children in rank order)."""
    if n == 0:
        return (frozenset(),)
    seen: dict = {}
    for smaller in plane_trees(n - 1):
        for parent in [()] + sorted(smaller):
            rank = sum(1 for p in smaller if len(p) == len(parent) + 1 and p[:-1] == parent)
            seen.setdefault(smaller | {parent + (rank,)}, None)
    return tuple(seen)


def brute_force(acc, budget, max_depth=None):
    best = 0.0
    for n in range(budget + 1):
        for paths in plane_trees(n):
            if max_depth is not None and any(len(p) > max_depth for p in paths):
                continue
            shape = TreeShape.from_paths(sorted(paths)) if paths else TreeShape.chain(0)
            best = max(best, expected_accepted(shape, acc))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_sequoia_tree_equals_brute_force_over_all_shapes(seed):
    rng = np.random.default_rng(seed)
    acc = np.sort(rng.random(4))[::-1] if seed % 2 else rng.random(3)  # also non-monotone vectors
    for budget in range(1, 7):
        for depth in (None, 2):
            best = brute_force(acc, budget, depth)
            shape = sequoia_shape(acc, budget, depth)
            assert len(shape) <= budget
            assert expected_accepted(shape, acc) == pytest.approx(best, abs=1e-9)
            assert sequoia_value(acc, budget, depth) == pytest.approx(best, abs=1e-9)


def test_sequoia_tree_beats_chains_and_stars_where_it_should():
    acc = [0.6, 0.25, 0.1]
    shape = sequoia_shape(acc, 16)
    assert expected_accepted(shape, acc) > expected_accepted(TreeShape.chain(16), acc) + 0.1
    assert shape.widths()[0] >= 2  # it spends nodes on second guesses near the root
    assert sequoia_shape([1.0], 8).widths() == [1] * 8  # a perfect first guess: a chain


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="node budget must be an integer >= 1"):
        sequoia_shape([0.5], 0)
    with pytest.raises(ValueError, match="node budget"):
        opt_tree(PathDrafter(), 0)
    with pytest.raises(TopKUnavailableError, match="cannot give top-k"):
        require_topk(object())
    with pytest.raises(TopKUnavailableError, match="at most 12 continuations"):
        instantiate_shape(PathDrafter(), TreeShape.from_paths([(i,) for i in range(13)]))
    profile = AcceptanceProfile((0.5, 0.2), "sha256:aaaa", "draft:x", 0.0, 10)
    with pytest.raises(ProfileMismatchError, match="measured for target"):
        profile.check("sha256:bbbb")
    assert profile.check("sha256:aaaa") is profile


def test_profile_round_trips(tmp_path):
    profile = AcceptanceProfile((0.5, 0.2), "sha256:aaaa", "draft:x", 1.0, 10)
    assert AcceptanceProfile.load(profile.save(tmp_path / "p.json")) == profile


def test_instantiate_shape_fills_ranks_with_the_drafters_choices():
    drafter = PathDrafter()
    shape = TreeShape.from_paths([(0,), (1,), (0, 0), (0, 1), (1, 0)])
    tree = instantiate_shape(drafter, shape)
    assert drafter.calls == 2  # one call per depth
    root = np.argsort(-drafter.dist(()), kind="stable")
    assert tree.token_ids[:2].tolist() == root[:2].tolist()
    under = np.argsort(-drafter.dist((int(root[0]),)), kind="stable")
    assert tree.token_ids[2:4].tolist() == under[:2].tolist()
    assert tree.parents.tolist() == [-1, -1, 0, 0, 1]


def test_opt_tree_expected_acceptance_never_falls_as_the_budget_grows():
    for seed in range(5):
        values = [estimated_acceptance(opt_tree(PathDrafter(seed=seed), b, max_depth=6)) for b in range(1, 25)]
        assert all(b >= a - 1e-12 for a, b in zip(values, values[1:])), values


def test_opt_tree_stopping_rule_stops():
    full = opt_tree(PathDrafter(sharp=3.0), 8, threshold=0.0, max_depth=10)
    assert full.expansions > 2  # a sure drafter: deeper nodes keep making the tree
    drafter = PathDrafter(sharp=3.0)
    stopped = opt_tree(drafter, 8, threshold=0.05, max_depth=10)
    assert stopped.expansions == drafter.calls < full.expansions  # a depth that adds < 0.05 expected tokens ends it
    assert estimated_acceptance(stopped) <= estimated_acceptance(full)


def test_best_first_tree_is_the_budget_likeliest_paths():
    drafter = PathDrafter(vocab=4, seed=3)
    tree = best_first_tree(drafter, budget=6, expand_batch=2, top_k=4, max_calls=64)
    scores = {}
    for depth in range(1, 7):  # every path to depth 6, by brute force
        for path in itertools.product(range(4), repeat=depth):
            p = 1.0
            for i in range(depth):
                p *= drafter.dist(path[:i])[path[i]]
            scores[path] = p
    best = sorted(scores.values(), reverse=True)[:6]
    assert np.exp(np.sort(tree.scores)[::-1]) == pytest.approx(best)


def test_adaptive_width_branches_only_where_unsure_and_falls_back():
    sure = adaptive_width_tree(PathDrafter(sharp=8.0), 8, branch_below=0.5, max_width=3, stop_below=0.0, max_depth=8)
    assert len(sure) == 8 and (sure.parents[1:] == np.arange(7)).all()  # a chain: the draft is sure everywhere
    unsure = adaptive_width_tree(PathDrafter(sharp=0.2), 8, branch_below=0.5, max_width=3, stop_below=0.0, max_depth=8)
    assert np.bincount(unsure.parents + 1)[0] == 3  # three guesses at the root
    fallback = adaptive_width_tree(PathDrafter(sharp=0.2), 8, branch_below=0.5, max_width=3, stop_below=0.5)
    assert len(fallback) == 0  # the draft is unsure at the root: a plain decoding step


def test_dynamic_tree_matches_eagle2_rerank():
    tree = dynamic_tree(PathDrafter(seed=1), top_k=3, depth=3, size=7)
    assert len(tree) == 7 and tree.expansions == 3
    parents = tree.parents
    assert all(p < i for i, p in enumerate(parents.tolist()))


def test_model_topk_drafter_tree_logits_equal_a_fresh_forward():
    import torch

    from specplug.kit.drafting import DraftCache
    from specplug.kit.tree_drafting import ModelTopKDrafter
    from specplug.testing.models import tiny_llama

    model = tiny_llama(vocab_size=64, seed=2)
    committed = [3, 7, 11, 5]
    drafter = ModelTopKDrafter(DraftCache(model), committed)
    tree = instantiate_shape(drafter, TreeShape.from_paths([(0,), (1,), (2,), (0, 0), (0, 1), (1, 0), (0, 0, 0), (0, 1, 0)]))
    checked = 0
    for node in range(len(tree)):
        path = [int(tree.token_ids[n]) for n in _path(tree.parents, node)]
        with torch.no_grad():
            fresh = model(torch.tensor([committed + path])).logits[0, -1]
        got = drafter.logits_of[node] if node in drafter.logits_of else None
        if got is not None:
            torch.testing.assert_close(got, fresh.float(), atol=1e-4, rtol=1e-4)
            checked += 1
    assert checked == 4  # every expanded node: 0, 1, 3, 4
    drafter.close()
    assert drafter.cache.lm.cache_len == len(committed)


def _path(parents, node):
    out = []
    while node >= 0:
        out.append(node)
        node = int(parents[node])
    return out[::-1]
