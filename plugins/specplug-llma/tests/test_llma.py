"""Tests of specplug-llma: the trigger rule, the reference, and the batch entry point."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.protocols import ProposalRequest
from specplug.testing import examples
from specplug_llma import LlmaOptions, LlmaProposer, copy_from_reference


def naive(tokens, num_prompt, reference, trigger, max_trigger, k):
    """The authors' loop spelled out: longest trigger of output tokens first, first reference occurrence."""
    ref = list(tokens[:num_prompt]) if reference is None else list(reference)
    out = list(tokens[num_prompt:])
    for m in range(min(max_trigger, len(out)), trigger - 1, -1):
        pattern = list(tokens[len(tokens) - m :])
        for j in range(len(ref) - m + 1):
            if ref[j : j + m] == pattern:
                copied = []
                for t in ref[j + m :]:
                    if t < 0 or len(copied) == k:
                        break
                    copied.append(t)
                return copied
    return []


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(0, 30), st.integers(1, 3), st.integers(0, 2),
       st.integers(0, 8), st.booleans())
def test_copy_equals_the_definition(tokens, prompt, trigger, extra, k, external):
    prompt = min(prompt, len(tokens))
    reference = [3, 1, -1, 2, 2, 4, 0, 1, 3] if external else None
    got = copy_from_reference(np.array(tokens), prompt, reference, trigger, trigger + extra, k)
    assert got.tolist() == naive(tokens, prompt, reference, trigger, trigger + extra, k)


def test_copies_only_after_the_trigger_length_of_output_tokens():
    """The paper's n: with n = 3 nothing is copied until three generated tokens match the reference,
    even when the prompt itself ends in a match; then the span after the match is copied."""
    reference = [10, 11, 12, 13, 14, 15, 16, 17]
    prompt = reference + [5, 10]  # the prompt ends in "10", which the reference holds
    proposer = LlmaProposer(LlmaOptions(trigger=3, max_trigger=3))
    grown = prompt[:]
    drafts = []
    for token in [11, 12, 13]:
        grown.append(token)
        drafts.append(proposer.propose(ProposalRequest("r", np.array(grown), len(prompt), 4)).token_ids.tolist())
    assert drafts == [[], [], [14, 15, 16, 17]]
    # with n = 1 the first generated token already triggers the copy
    one = LlmaProposer(LlmaOptions(trigger=1))
    assert one.propose(ProposalRequest("r", np.array(prompt + [11]), len(prompt), 4)).token_ids.tolist() == [12, 13, 14, 15]


def test_external_reference_and_document_boundaries(tmp_path):
    np.save(tmp_path / "ref.npy", np.array([1, 2, 3, -1, 4, 5, 6], dtype=np.int32))
    proposer = LlmaProposer(LlmaOptions(reference=str(tmp_path / "ref.npy")))
    assert proposer.propose(ProposalRequest("r", np.array([9, 9, 2]), 2, 5)).token_ids.tolist() == [3]
    assert proposer.propose(ProposalRequest("r", np.array([9, 9, 4]), 2, 5)).token_ids.tolist() == [5, 6]


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.npy"), "does not exist"),
    (lambda p: (np.save(p / "e.npy", np.zeros(0, np.int32)), str(p / "e.npy"))[1], "empty"),
    (lambda p: (p.joinpath("d").mkdir(), str(p / "d"))[1], "without tokens.npy"),
])
def test_bad_reference_is_refused_naming_the_problem(tmp_path, make, message):
    from specplug.registry import get_registry

    with pytest.raises(Exception, match=message):
        get_registry().method("llma").build({"reference": make(tmp_path)})


@pytest.mark.parametrize("external", [False, True])
def test_batch_entry_point_matches_propose_with_reused_rows(tmp_path, external):
    from specplug.testing.batch import assert_batch_matches_propose

    rng = np.random.default_rng(0)
    base = rng.integers(0, 30, size=40)
    np.save(tmp_path / "ref.npy", base.astype(np.int32))
    sequences = [np.concatenate([base[:30], rng.integers(0, 30, size=int(n)), base[5:25]]).tolist() for n in rng.integers(5, 40, size=9)]
    options = LlmaOptions(reference=str(tmp_path / "ref.npy") if external else None, trigger=2)
    checked = assert_batch_matches_propose(lambda: LlmaProposer(options), sequences, [30] * len(sequences), rows=4, k=5)
    assert checked > 50


def test_docstring_examples():
    import doctest

    import specplug_llma.proposer

    result = doctest.testmod(specplug_llma.proposer)
    assert result.attempted >= 3 and result.failed == 0
