from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest
from specplug.testing import examples
from specplug_rest.datastore import Datastore, write_datastore
from specplug_rest.proposer import RestOptions, RestProposer, retrieve
from specplug_rest.suffix_array import build_suffix_array
from specplug_rest.trie import trie_draft

docs_strategy = st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=25), min_size=1, max_size=4)


def joined(docs):
    out = []
    for d in docs:
        if out:
            out.append(-1)
        out.extend(d)
    return out


def brute_retrieve(tokens, context, max_len, min_len, depth):
    for length in range(min(max_len, len(context)), min_len - 1, -1):
        q = list(context[len(context) - length :])
        conts = []
        for i in range(len(tokens) - length + 1):
            if tokens[i : i + length] == q:
                cont = []
                for t in tokens[i + length : i + length + depth]:
                    if t < 0:
                        break
                    cont.append(t)
                if cont:
                    conts.append(cont)
        if conts:
            return length, conts
    return 0, []


@settings(max_examples=examples(150), deadline=None)
@given(docs_strategy, st.lists(st.integers(0, 4), min_size=1, max_size=10), st.integers(1, 5))
def test_retrieve_matches_brute_force(docs, context, depth):
    tokens = joined(docs)
    arr = np.array(tokens, dtype=np.int32)
    sa = build_suffix_array(arr)
    got_len, got = retrieve(arr, sa, context, 6, 1, 10_000, depth)
    exp_len, exp = brute_retrieve(tokens, context, 6, 1, depth)
    assert got_len == exp_len
    assert Counter(map(tuple, got)) == Counter(map(tuple, exp))


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), max_size=30), st.integers(1, 20))
def test_trie_draft_is_a_closed_most_frequent_tree(conts, max_nodes):
    draft = trie_draft(conts, max_nodes)
    assert len(draft) <= max_nodes
    if not conts:
        assert len(draft) == 0
        return
    parents = draft.parent_array()
    paths = [tuple(draft.token_ids[draft.path_to(i)].tolist()) for i in range(len(draft))]
    assert len(set(paths)) == len(paths)  # a trie: no duplicate prefixes
    counts = Counter(tuple(c[:k]) for c in conts for k in range(1, len(c) + 1))
    for i, path in enumerate(paths):
        assert counts[path] > 0
        if parents[i] >= 0:
            assert counts[paths[parents[i]]] >= counts[path]
    kept = set(paths)
    # nothing dropped is more frequent than something kept
    if kept:
        worst = min(counts[p] for p in kept)
        assert all(counts[p] <= worst for p in counts if p not in kept)
    # the first chain is the greedy most-frequent path
    chain = [0]
    while chain[-1] + 1 < len(draft) and parents[chain[-1] + 1] == chain[-1]:
        chain.append(chain[-1] + 1)
    prefix: tuple = ()
    for node in chain:
        best = max(counts[prefix + (t,)] for t in range(4) if prefix + (t,) in kept)
        prefix = paths[node]
        assert counts[prefix] == best


def test_proposer_drafts_a_continuation_from_the_datastore(tmp_path):
    docs = [[10, 11, 12, 13, 14, 15], [20, 11, 12, 13, 16], [30, 11, 12, 13, 14, 17]]
    write_datastore(tmp_path / "ds", docs, {"name": "t", "vocab_size": 64, "fingerprint": "sha256:x"})
    options = RestOptions(datastore=str(tmp_path / "ds"), max_nodes=4, max_depth=3)
    proposer = RestProposer(Datastore.open(tmp_path / "ds"), options)
    req = ProposalRequest("r", np.array([1, 2, 11, 12], dtype=np.int64), 2, max_tokens=8)
    draft = proposer.propose(req)
    assert proposer.last_match_len == 2
    # 13 (x3) -> 14 (x2) -> 15/17, 16: four nodes, the first chain most frequent
    assert draft.token_ids[:2].tolist() == [13, 14]
    assert len(draft) == 4
    # k clips the draft
    small = proposer.propose(ProposalRequest("r", req.token_ids, 2, max_tokens=1))
    assert small.token_ids.tolist() == [13]
    # no match at all -> empty draft
    assert len(proposer.propose(ProposalRequest("r", np.array([99, 98]), 1, max_tokens=8))) == 0
