"""Tests of specplug-ngrammys: the model bigram table, the batch of drafts, and the first-chain path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specplug.protocols import ProposalRequest, TargetInfo
from specplug_ngrammys import NgrammysOptions, NgrammysProposer, bigram_table


def test_bigram_table_is_the_models_direct_path_top_k():
    """Each row equals the top-k of the model's own logits for a one-token input whose layers add nothing:
    embedding -> final norm -> unembedding, computed here with the model's modules directly."""
    from specplug.testing.models import tiny_llama

    model = tiny_llama(vocab_size=64, seed=3)
    proposer = NgrammysProposer(NgrammysOptions(topk=5))
    proposer.bind_target(TargetInfo(vocab_size=64, model=model))
    with torch.no_grad():
        h = model.model.norm(model.get_input_embeddings().weight[:, None, :])[:, 0]
        expected = torch.topk(model.get_output_embeddings()(h), 5, dim=-1).indices.numpy()
    assert np.array_equal(proposer.table, expected)


def toy_table():
    # token t -> (t + 1) % 10 best, then (t + 2) % 10, (t + 3) % 10
    return np.array([[(t + 1) % 10, (t + 2) % 10, (t + 3) % 10] for t in range(10)], dtype=np.int32)


def test_batch_of_drafts_context_first_then_bigram_chains():
    proposer = NgrammysProposer(NgrammysOptions(num_drafts=3))
    proposer.table = toy_table()
    # context: "4 5" occurred before, followed by 9 0; the root 5's bigram chains start at 6, 7, 8
    draft = proposer.propose(ProposalRequest("r", np.array([4, 5, 9, 0, 4, 5]), 2, 3))
    chains = [draft.token_ids[draft.path_to(i)].tolist() for i in range(len(draft)) if i + 1 == len(draft) or draft.parents[i + 1] != i]
    assert chains == [[9, 0, 4], [6, 7, 8], [7, 8, 9]]
    # no context match: the bigram chains alone
    lone = proposer.propose(ProposalRequest("r", np.array([1, 2, 3]), 2, 2))
    assert lone.token_ids[lone.parents == -1].tolist() == [4, 5, 6]


def test_the_context_draft_continues_with_the_bigram_chain_when_the_copy_runs_out():
    proposer = NgrammysProposer(NgrammysOptions(num_drafts=1))
    proposer.table = toy_table()
    draft = proposer.propose(ProposalRequest("r", np.array([3, 7, 3]), 1, 4))  # "3" -> 7, then 3 ends the text
    assert draft.token_ids.tolist() == [7, 3, 4, 5]


def test_without_a_table_the_error_says_how_to_get_one():
    with pytest.raises(ValueError, match="option model="):
        NgrammysProposer().propose(ProposalRequest("r", np.array([1, 2]), 1, 2))


def test_batch_entry_point_matches_propose_with_reused_rows():
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 10, size=40)
    sequences = [np.concatenate([base, rng.integers(0, 10, size=int(n)), base[:20]]).tolist() for n in rng.integers(5, 60, size=9)]

    def build():
        p = NgrammysProposer()
        p.table = toy_table()
        return p

    assert assert_batch_matches_propose(build, sequences, [30] * len(sequences), rows=4, k=5) > 50
