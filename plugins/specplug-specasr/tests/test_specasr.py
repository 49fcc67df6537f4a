"""SpecASR: transcripts identical to plain decoding, and each mechanism doing what the paper says
(adaptive length stops on low confidence, recycling reuses the old tail after a substitution, the
second pass adds second-choice branches at the least confident positions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.kit.drafting import ReducedVocab
from specplug.kit.seq2seq import Seq2SeqTarget, transcribe
from specplug.kit.whisper_draft import build_draft_decoder, load_draft_decoder, save_draft_decoder
from specplug.protocols import ProposalRequest, StepFeedback
from specplug.testing.speech import tiny_whisper
from specplug_specasr.proposer import SpecAsrOptions, SpecAsrProposer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, prompt, extractor = tiny_whisper(seed=1)
    model.requires_grad_(False)
    t = np.arange(16000 * 2) / 16000
    audios = [(0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220, 1000, 3000)]
    vocab = ReducedVocab(np.arange(model.config.vocab_size), model.config.vocab_size)
    weak = save_draft_decoder(build_draft_decoder(model, [1], vocab), model, tmp_path_factory.mktemp("weak"))
    exact = save_draft_decoder(build_draft_decoder(model, [0, 1], vocab), model, tmp_path_factory.mktemp("exact"))
    engine = ReferenceEngine(model, None, eos_token_id=3)
    return model, prompt, extractor, audios, weak, exact, engine


def _proposer(folder, model, **options):
    proposer = SpecAsrProposer(SpecAsrOptions(draft=str(folder), **options))
    proposer.bind_target(ReferenceEngine(model, None, eos_token_id=3).target_info())
    return proposer


@pytest.mark.parametrize("options", [{}, {"recycle": False, "max_branches": 0}, {"truncate_below": 0.0, "branch_below": 1.0, "max_branches": 3}])
def test_greedy_transcripts_identical_to_plain(tiny, options):
    model, prompt, extractor, audios, weak, exact, engine = tiny
    plain = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=20)
    for folder in (weak, exact):
        proposer = SpecAsrProposer(SpecAsrOptions(draft=str(folder), **options))
        got = transcribe(engine, extractor, audios, proposer, k=6, max_new_tokens=20, prompt=prompt)
        assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
        assert sum(g.result.stats.accepted for g in got) > 0


def _encode(tiny, index=0):
    model, prompt, extractor, audios, *_ , engine = tiny
    engine.target.encode(extractor(audios[index], sampling_rate=16000, return_tensors="pt").input_features)


def test_adaptive_length_stops_where_the_draft_hesitates(tiny):
    model, prompt, extractor, audios, weak, exact, engine = tiny
    _encode(tiny)
    confident = _proposer(weak, model, truncate_below=0.0, max_branches=0)
    hesitant = _proposer(weak, model, truncate_below=0.999, max_branches=0)
    lengths = []
    for proposer in (confident, hesitant):
        proposer.start_request("r", np.array(prompt))
        lengths.append(len(proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 8))))
    assert lengths[0] == 8 and lengths[1] < 8 and hesitant.counts.truncated == 1


def test_recycling_reuses_the_old_tail_after_a_substitution(tiny):
    model, prompt, extractor, audios, weak, exact, engine = tiny
    _encode(tiny)
    truth = engine.generate([prompt], max_new_tokens=12)[0].token_ids
    _encode(tiny)
    proposer = _proposer(exact, model, truncate_below=0.0, max_branches=0)
    proposer.start_request("r", np.array(prompt))
    first = proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 8))
    assert first.token_ids.tolist() == truth[:8]  # the exact draft drafts the target's own transcript
    # pretend the draft had a wrong token at index 2 that the target replaced by truth[2] (a substitution)
    wrong = (truth[2] + 1) % model.config.vocab_size
    proposer._last["r"].tokens[2] = wrong
    feedback = StepFeedback("r", first, [0, 1], truth[:3])
    proposer.observe(feedback)
    calls = []
    cache = proposer._caches["r"]
    original = cache.feed
    cache.feed = lambda tokens: (calls.append(len(tokens)), original(tokens))[1]
    committed = np.array(prompt + truth[:3])
    second = proposer.propose(ProposalRequest("r", committed, len(prompt), 5))
    assert second.token_ids.tolist() == truth[3:8]  # the old tail, realigned
    assert proposer.counts.recycled_proposals == 1 and proposer.counts.recycled_tokens == 5
    assert calls == [1], "one draft step after the target's token; the recycled tokens are not drafted again one by one"


def test_second_pass_branches_at_the_least_confident_positions(tiny):
    model, prompt, extractor, audios, weak, exact, engine = tiny
    _encode(tiny)
    proposer = _proposer(weak, model, truncate_below=0.0, max_branches=2, branch_below=1.0, branch_depth=2)
    proposer.start_request("r", np.array(prompt))
    draft = proposer.propose(ProposalRequest("r", np.array(prompt), len(prompt), 10))
    chain = proposer._last["r"]
    n = len(chain.tokens)
    assert draft.is_tree and len(draft) == n + 4 and proposer.counts.branches == 2
    weakest = np.argsort(chain.confidence, kind="stable")[:2].tolist()
    # brute force: the draft's second choice at each weakest position, as a sibling of the chain's token there
    lm = Seq2SeqTarget(load_draft_decoder(weak, model))
    for b, position in enumerate(weakest):
        root = n + 2 * b
        lm.reset()
        logits = lm.forward(prompt + chain.tokens[:position])[-1]
        top2 = torch.topk(logits, 2).indices.tolist()
        second = top2[1] if top2[0] == chain.tokens[position] else top2[0]
        assert draft.token_ids[root] == second
        assert draft.parents[root] == position - 1 and draft.parents[root + 1] == root
