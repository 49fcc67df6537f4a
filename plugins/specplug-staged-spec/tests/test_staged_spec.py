"""staged_spec: the tree is the budget likeliest continuations (brute force), the n-gram stage leaves
the draft's tree unchanged while taking fewer draft forwards, greedy output equals plain decoding
(tiny model; SmolLM2 with a derived draft, slow), exact sampling at temperature 1 (chi-square, with
a control that must be rejected), the backoff n-gram's estimates, and clear errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.kit.drafting import DraftCache
from specplug.kit.tree_drafting import ModelTopKDrafter
from specplug.kit.trees import Expansion
from specplug.protocols import Draft, SamplingParams
from specplug.registry import get_registry
from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama, total_accepted
from specplug.verify import process_logits
from specplug_staged_spec import BackoffNgram, staged_tree

OPTIONS = {"draft_layers": "0", "budget": 10, "top_k": 3, "expand_batch": 2, "spec_len": 4}
VOCAB = 5


class MarkovDrafter:
    """A top-k drafter whose distribution after a node depends on the node's token (root: ``q0``);
    counts its calls that would be draft forwards (any node other than the root)."""

    max_k = VOCAB

    def __init__(self, q0: np.ndarray, q: np.ndarray):
        self.q0, self.q, self.calls = q0, q, 0

    def expand(self, nodes, token_ids, parents, k, with_dists=False):
        self.calls += any(n >= 0 for n in nodes)
        rows = np.stack([self.q0 if n < 0 else self.q[int(token_ids[n])] for n in nodes])
        order = np.argsort(-rows, axis=-1, kind="stable")[:, :k]
        return Expansion(order.astype(np.int64), np.take_along_axis(rows, order, -1), None)


def _markov(seed: int = 3) -> MarkovDrafter:
    rng = np.random.default_rng(seed)
    return MarkovDrafter(rng.dirichlet(np.full(VOCAB, 0.6)), rng.dirichlet(np.full(VOCAB, 0.6), size=VOCAB))


def _paths(tree) -> list[tuple[int, ...]]:
    out = []
    for i in range(len(tree)):
        path, node = [], i
        while node >= 0:
            path.append(int(tree.token_ids[node]))
            node = int(tree.parents[node])
        out.append(tuple(reversed(path)))
    return out


def _brute_force_scores(drafter, top_k: int, depth: int) -> list[float]:
    """Cumulative log-probabilities of every path of at most ``depth`` tokens through top-k children."""
    out = []

    def walk(prev, logp, left):
        row = drafter.q0 if prev is None else drafter.q[prev]
        for token in np.argsort(-row, kind="stable")[:top_k]:
            out.append(logp + math.log(row[token]))
            if left > 1:
                walk(int(token), out[-1], left - 1)

    walk(None, 0.0, depth)
    return sorted(out, reverse=True)


@pytest.mark.parametrize("budget", [1, 3, 6, 9])
def test_the_tree_is_the_budget_likeliest_continuations_by_brute_force(budget):
    drafter = _markov()
    tree, _ = staged_tree(drafter, budget, top_k=3, expand_batch=2, spec_len=0)
    assert len(tree) == budget
    assert np.allclose(sorted(tree.scores, reverse=True), _brute_force_scores(drafter, 3, budget)[:budget])
    assert all(p < i for i, p in enumerate(tree.parents))  # parents first


def _greedy_chain(drafter: MarkovDrafter, length: int) -> list[int]:
    chain = [int(np.argmax(drafter.q0))]
    while len(chain) < length:
        chain.append(int(np.argmax(drafter.q[chain[-1]])))
    return chain


@pytest.mark.parametrize("expand_batch", [1, 3])
def test_the_ngram_stage_keeps_the_drafts_tree_and_saves_draft_forwards(expand_batch):
    """The second stage is speculative decoding of the draft model: with the n-gram the draft builds
    the very same tree, in fewer forwards, when the context holds the draft's own greedy text (text
    that repeats, the case the stage is for). Without the stage's savings this test fails."""
    trees, calls = {}, {}
    for staged in (True, False):
        drafter = _markov(7)
        context = [0, 1] + _greedy_chain(drafter, 12)  # the n-gram has seen the draft's greedy path
        ngram = BackoffNgram(3)
        ngram.update(context)
        trees[staged], stats = staged_tree(drafter, 14, top_k=2, expand_batch=expand_batch, spec_len=4 if staged else 0,
                                           ngram=ngram if staged else None, context=context[:2])
        calls[staged] = drafter.calls
        assert stats.draft_calls == drafter.calls
    assert _paths(trees[True]) == _paths(trees[False])
    assert np.allclose(trees[True].scores, trees[False].scores)
    assert calls[True] < calls[False], calls


def test_greedy_output_equals_plain_decoding_with_fewer_draft_forwards_for_the_ngram_stage():
    model = tiny_llama(vocab_size=128, seed=1)
    spec = get_registry().method("staged_spec")
    prompts = repetitive_prompts(2, 128) + [[5, 9, 17]]
    out = assert_greedy_lossless(lambda: spec.build(OPTIONS), model, prompts, k=10, max_new_tokens=24,
                                 verifiers=("tree_verification",))
    assert total_accepted(out) > 0
    from specplug.engine import ReferenceEngine

    engine = ReferenceEngine(model)
    runs = {}
    for spec_len in (4, 0):
        proposer = spec.build(dict(OPTIONS, spec_len=spec_len))
        result = engine.generate(prompts, proposer, "tree_verification", k=10, max_new_tokens=24)
        runs[spec_len] = ([r.token_ids for r in result], proposer.stats)
    assert runs[4][0] == runs[0][0]
    assert runs[4][1].ngram_accepted > 0 and runs[0][1].ngram_proposed == 0
    assert runs[4][1].draft_calls < runs[0][1].draft_calls


def _first_two_tokens(wrong_q: bool, draws: int = 3000, seed: int = 0):
    """Two tokens emitted from a staged tree at temperature 1 against a Markov target; the control
    sends the draft's distribution as q, as if the top-k tree had been sampled from the draft."""
    drafter = _markov(5)
    rng = np.random.default_rng(9)
    logits0 = torch.tensor(rng.normal(scale=1.2, size=VOCAB), dtype=torch.float32)
    logits = torch.tensor(rng.normal(scale=1.2, size=(VOCAB, VOCAB)), dtype=torch.float32)
    sampling = SamplingParams(temperature=1.0)
    p0 = process_logits(logits0[None], sampling)[0].double().numpy()
    p = process_logits(logits, sampling).double().numpy()
    expected = (p0[:, None] * p).reshape(-1)
    verifier = get_registry().verifier("tree_verification").build({})
    gen = torch.Generator().manual_seed(seed)
    tree, _ = staged_tree(drafter, 6, top_k=2, expand_batch=2, spec_len=0)
    q = None
    if wrong_q:
        q = np.stack([drafter.q0 if parent < 0 else drafter.q[int(tree.token_ids[parent])] for parent in tree.parents])
    draft = Draft(tree.token_ids, tree.parents, q)
    rows = torch.stack([logits0] + [logits[int(t)] for t in tree.token_ids])
    counts = np.zeros(VOCAB * VOCAB)
    for _ in range(draws):
        out = verifier.verify(rows, draft, sampling, gen).tokens
        while len(out) < 2:
            out = out + verifier.verify(logits[out[-1]][None], Draft.empty(), sampling, gen).tokens
        counts[out[0] * VOCAB + out[1]] += 1
    return counts, expected


def _pvalue(counts, expected) -> float:
    return float(chisquare(counts, expected / expected.sum() * counts.sum()).pvalue)


def test_sampling_from_the_staged_tree_keeps_the_target_distribution():
    """The tree holds the draft's top tokens (a deterministic proposal): verified as such, the first
    two tokens follow the target; sending the draft's q instead (as for a sampled draft) is biased and
    the check rejects it, so the positive check could fail."""
    assert _pvalue(*_first_two_tokens(wrong_q=False)) > 1e-3
    assert _pvalue(*_first_two_tokens(wrong_q=True)) < 1e-6


def test_the_backoff_ngram_follows_the_longest_history_and_backs_off():
    ngram = BackoffNgram(3)
    ngram.update([1, 2, 3, 1, 2, 3, 1, 2, 4, 7, 2, 5, 2, 5, 2, 5])
    dist = ngram.distribution([1, 2])
    assert math.isclose(sum(dist.values()), 1.0)
    assert ngram.guess([1, 2]) == 3  # the trigram (1, 2) -> 3 seen twice, -> 4 once
    assert ngram.guess([9, 2]) == 5  # no (9, 2): the bigram 2 -> 5 (three times) decides
    assert ngram.guess([8, 8]) == 2  # nothing after 8: the unigram's most frequent token
    assert ngram.chain([1, 2], 4) == [3, 1, 2, 3]
    assert BackoffNgram(3).guess([1]) is None
    ngram.update([6, 6])  # not an extension: counts start afresh
    assert ngram.guess([6]) == 6


def test_bad_input_is_refused_with_the_fix():
    from specplug.methods import OptionsError

    spec = get_registry().method("staged_spec")
    with pytest.raises(OptionsError, match="node budget must be an integer >= 1"):
        spec.build(dict(OPTIONS, budget=0))
    with pytest.raises(OptionsError, match="exactly one of draft_model"):
        spec.build({})
    with pytest.raises(OptionsError, match="source=eagle3 .*not supported: give draft_model or draft_layers"):
        spec.build({"source": "eagle3"})
    with pytest.raises(OptionsError, match="ngram_order"):
        spec.build(dict(OPTIONS, ngram_order=0))
    with pytest.raises(ValueError, match="n-gram order must be an integer >= 1"):
        BackoffNgram(0)
    with pytest.raises(ValueError, match="node budget must be an integer >= 1"):
        staged_tree(_markov(), 0)


@pytest.mark.slow
def test_greedy_output_equals_plain_decoding_on_smollm2_with_a_derived_draft():
    from specplug.models import load_model
    from specplug.models.derive import derive_model
    from specplug.testing import spec_bench_chat_prompts

    model, tokenizer = load_model("smollm2-135m")
    draft = derive_model("smollm2-135m", "0-3")
    spec = get_registry().method("staged_spec")
    options = dict(OPTIONS, draft_layers=None, draft_model=str(draft), budget=8)
    out = assert_greedy_lossless(lambda: spec.build(options), model, spec_bench_chat_prompts(tokenizer, 2), k=8,
                                 max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
