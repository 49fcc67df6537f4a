import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest, StepFeedback
from specplug.testing import examples
from specplug.testing.toy import ToyTarget, plain, speculate
from specplug_recycling.proposer import AdjacencyMatrix, RecyclingOptions, RecyclingProposer
from specplug_recycling.tree import build_template, expand


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.integers(1, 6))
def test_template_prefixes_are_trees_in_decreasing_prior(num_nodes, width, max_depth):
    t = build_template(num_nodes, width, max_depth)
    assert len(t) <= num_nodes and len(set(t)) == len(t)
    depth = []
    for i, (parent, rank) in enumerate(t):
        assert -1 <= parent < i and 0 <= rank < width  # every prefix is closed under parents
        depth.append(1 if parent < 0 else depth[parent] + 1)
    assert max(depth) <= max_depth
    assert len({(p, r) for p, r in t}) == len(t)


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(0, 1000))
def test_expansion_matches_the_matrix_slot_by_slot(num_nodes, width, seed):
    rng = np.random.default_rng(seed)
    vocab = 10
    matrix = np.stack([rng.permutation(vocab)[:width] for _ in range(vocab)]).astype(np.int32)
    matrix[rng.random(vocab) < 0.3] = -1  # rows not seen yet
    template = build_template(num_nodes, width, 5)
    root = int(rng.integers(vocab))
    d = expand(template, matrix, root)
    parents = d.parent_array()
    for i in range(len(d)):
        parent_token = root if parents[i] < 0 else int(d.token_ids[parents[i]])
        assert int(d.token_ids[i]) in matrix[parent_token].tolist()
    # brute force: the set of token paths equals the template's non-empty slots
    slot_paths, tok = [], []
    for parent, rank in template:
        pt = root if parent < 0 else tok[parent]
        t = -1 if pt < 0 or matrix[pt, rank] < 0 else int(matrix[pt, rank])
        tok.append(t)
        path = (t,) if parent < 0 else (slot_paths[parent] + (t,) if slot_paths[parent] is not None and t >= 0 else None)
        slot_paths.append(path if t >= 0 else None)
    expected = {p for p in slot_paths if p is not None}
    got = {tuple(d.token_ids[d.path_to(i)].tolist()) for i in range(len(d))}
    assert got == expected and len(got) == len(d)
    # the first chain is the all-top-1 path
    node, t = 0, root
    while node < len(d) and parents[node] == node - 1:
        assert d.token_ids[node] == matrix[t, 0]
        t = int(d.token_ids[node])
        node += 1


def test_matrix_grows_lazily_and_keeps_the_latest_row():
    m = AdjacencyMatrix(width=3)
    m.update(np.array([2, 2000]), np.array([[1, 2, 3], [4, 5, 6]]))
    assert m.rows.shape == (2048, 3) and m.rows.dtype == np.int32
    m.update(np.array([2]), np.array([[9, 8]]))  # fewer columns than width: the rest is -1
    assert m.rows[2].tolist() == [9, 8, -1] and m.rows[2000].tolist() == [4, 5, 6]


def test_observe_writes_the_root_and_every_node_even_rejected_ones():
    p = RecyclingProposer(RecyclingOptions(width=2, tree_nodes=8))
    p.start_request("a", np.array([4]))
    assert len(p.propose(ProposalRequest("a", np.array([4]), 1, 5))) == 0  # cold matrix: no draft
    from specplug.protocols import Draft

    p.propose(ProposalRequest("a", np.array([4]), 1, 5))
    d = Draft([6, 7], [-1, -1])
    p.observe(StepFeedback("a", d, [], [1], target_topk=np.array([[1, 6], [3, 2], [5, 0]])))
    assert p.matrix.rows[[4, 6, 7]].tolist() == [[1, 6], [3, 2], [5, 0]]
    d2 = p.propose(ProposalRequest("a", np.array([4]), 1, 8))
    assert d2.token_ids[0] == 1 and 6 in d2.token_ids.tolist()  # the root's recycled top-2
    assert d2.token_ids[d2.parents == -1].tolist() == [1, 6]  # the top-2 after 4
    assert d2.token_ids[d2.parents == int(np.flatnonzero(d2.token_ids == 6)[0])].tolist() == [3]  # its top-1 slot


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.integers(0, 15), min_size=1, max_size=8), st.integers(1, 10), st.integers(1, 50), st.integers(0, 5), st.integers(1, 3))
def test_greedy_identical_to_plain_on_random_histories(prompt, k, n, seed, order):
    target = ToyTarget(vocab=16, seed=seed, order=order)
    proposer = RecyclingProposer(RecyclingOptions(width=4, tree_nodes=16))
    for rid in ("first", "second"):  # the second request starts with the first one's matrix
        out, steps, drafts = speculate(proposer, target, prompt, n, k, topk=4, rid=rid)
        assert out == plain(target, prompt, n)


def test_a_warm_matrix_drafts_a_first_order_target_exactly():
    target = ToyTarget(vocab=16, seed=2, order=1)  # next token depends on the last one only
    proposer = RecyclingProposer(RecyclingOptions(width=4, tree_nodes=8, max_depth=8))
    speculate(proposer, target, [3], 40, 8, topk=4, rid="warmup")
    out, steps, _ = speculate(proposer, target, [3], 45, 8, topk=4, rid="warm")
    assert out == plain(target, [3], 45)
    assert steps <= 10  # the top-1 chain of the 8-slot template (depth 4) is always right: 5 tokens a step
