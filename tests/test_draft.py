"""Draft's own cleaning: padding and out-of-vocabulary ids are no draft, for a node and all below it.

The engines, the vLLM adapter and the level-2 verifier hook clean every draft with these methods
before the target sees it; the verifiers use :meth:`Draft.in_vocab` so that they never accept such
an id (``tests/test_verify.py`` checks that property for every registered verifier).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from specplug.protocols import Draft


def test_padding_is_minus_one_as_in_vllm():
    assert Draft.PADDING == -1


def test_in_vocab_rules_out_descendants_and_the_rest_of_a_chain():
    assert Draft.chain([1, -1, 2]).in_vocab(8).tolist() == [True, False, False]
    assert Draft.chain([1, 9, 2]).in_vocab(8).tolist() == [True, False, False]
    tree = Draft([1, -1, 2, 3, 8], parents=[-1, -1, 1, 0, 3])
    assert tree.in_vocab(8).tolist() == [True, False, False, True, False]
    assert Draft.empty().in_vocab(8).tolist() == []


def test_without_invalid_cuts_chains_and_prunes_trees_keeping_probs_in_step():
    pruned = Draft([1, -1, 2, 3, 8], parents=[-1, -1, 1, 0, 3]).without_invalid(8)
    assert pruned.token_ids.tolist() == [1, 3] and pruned.parents.tolist() == [-1, 0]
    chain = Draft.chain([4, 5, Draft.PADDING, 6], probs=np.eye(8)[[4, 5, 0, 6]]).without_invalid(8)
    assert chain.token_ids.tolist() == [4, 5] and not chain.is_tree
    assert chain.probs.argmax(-1).tolist() == [4, 5]
    assert Draft.chain([-1, -1]).without_invalid(8).token_ids.tolist() == []
    assert Draft.chain([3, 8000]).without_invalid(8000).token_ids.tolist() == [3]
    valid = Draft([1, 2, 3], parents=[-1, 0, 0])
    assert valid.without_invalid(8) is valid  # nothing to clean: the same object, no copy


def test_cleaning_a_draft_imports_no_torch():
    code = ("import sys; from specplug.protocols import Draft; "
            "assert Draft([1, -1, 2], parents=[-1, 0, -1]).without_invalid(8).token_ids.tolist() == [1, 2]; "
            "assert 'torch' not in sys.modules, 'protocols imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
