"""specexec: greedy output equals plain decoding (tiny model; SmolLM2 with a derived draft, slow), the
method's own tree rule, and bad options refused."""

from __future__ import annotations

import pytest

from specplug.registry import get_registry
from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama, total_accepted

OPTIONS = {'budget': 12, 'expand_batch': 4, 'top_k': 4, 'draft_layers': '0'}


def test_greedy_output_equals_plain_decoding_on_a_tiny_model():
    model = tiny_llama(vocab_size=128, seed=1)
    spec = get_registry().method("specexec")
    out = assert_greedy_lossless(lambda: spec.build(OPTIONS), model, repetitive_prompts(2, 128) + [[5, 9, 17]], k=16,
                                 max_new_tokens=24, verifiers=("tree_verification",))
    assert total_accepted(out) > 0

def test_the_tree_holds_the_budget_likeliest_continuations():
    import numpy as np

    from specplug.kit.drafting import DraftCache
    from specplug.kit.tree_drafting import ModelTopKDrafter
    from specplug.kit.trees import best_first_tree, dynamic_tree

    model = tiny_llama(vocab_size=128, seed=1)
    drafter = ModelTopKDrafter(DraftCache(model), [5, 9, 17, 5, 9])
    tree = best_first_tree(drafter, 10, expand_batch=2, top_k=6, max_calls=40)
    drafter.close()
    wide = ModelTopKDrafter(DraftCache(model), [5, 9, 17, 5, 9])
    reference = dynamic_tree(wide, top_k=10, depth=4, size=10)  # a much wider search
    assert np.sort(tree.scores).sum() >= np.sort(reference.scores).sum() - 1e-9


def test_bad_options_are_refused():
    from specplug.methods import OptionsError

    spec = get_registry().method("specexec")
    with pytest.raises(OptionsError, match="node budget must be an integer >= 1"):
        spec.build(dict(OPTIONS, budget=0))
    with pytest.raises(OptionsError, match="exactly one of draft_model"):
        spec.build({})


@pytest.mark.slow
def test_greedy_output_equals_plain_decoding_on_smollm2_with_a_derived_draft():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts

    model, tokenizer = load_model("smollm2-135m")
    spec = get_registry().method("specexec")
    options = dict(OPTIONS, draft_layers="0-3")
    out = assert_greedy_lossless(lambda: spec.build(options), model, spec_bench_chat_prompts(tokenizer, 2), k=16,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
