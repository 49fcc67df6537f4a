"""edgellm: greedy output equals plain decoding (tiny model; SmolLM2 with a derived draft, slow), the
method's own tree rule, and bad options refused."""

from __future__ import annotations

import pytest

from specplug.registry import get_registry
from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama, total_accepted

OPTIONS = {'budget': 8, 'branch_below': 0.9, 'stop_below': 0.0, 'draft_layers': '0'}


def test_greedy_output_equals_plain_decoding_on_a_tiny_model():
    model = tiny_llama(vocab_size=128, seed=1)
    spec = get_registry().method("edgellm")
    out = assert_greedy_lossless(lambda: spec.build(OPTIONS), model, repetitive_prompts(2, 128) + [[5, 9, 17]], k=16,
                                 max_new_tokens=24, verifiers=("tree_verification",))
    assert total_accepted(out) > 0

def recorded(proposer):
    """The proposer, keeping every tree it builds in ``proposer.trees``."""
    proposer.trees, build = [], proposer.build_tree

    def build_tree(drafter, budget, request):
        tree = build(drafter, budget, request)
        proposer.trees.append(tree)
        return tree

    proposer.build_tree = build_tree
    return proposer


def test_width_follows_the_drafts_confidence_and_the_fallback_gives_plain_steps():
    from specplug.engine import ReferenceEngine

    model = tiny_llama(vocab_size=128, seed=1)
    spec = get_registry().method("edgellm")
    sure = recorded(spec.build({"draft_layers": "0", "budget": 8, "branch_below": 0.0, "stop_below": 0.0}))
    ReferenceEngine(model).generate([[5, 9, 17]], sure, k=8, max_new_tokens=12)
    assert all((t.parents[1:] >= 0).all() and len(t) == min(8, len(t)) for t in sure.trees)  # never branches: chains
    unsure = recorded(spec.build({"draft_layers": "0", "budget": 8, "branch_below": 1.0, "max_width": 3, "stop_below": 0.0}))
    ReferenceEngine(model).generate([[5, 9, 17]], unsure, k=8, max_new_tokens=12)
    assert (unsure.trees[0].parents == -1).sum() == 3  # three guesses at every position, the root's included
    fallback = spec.build({"draft_layers": "0", "budget": 8, "stop_below": 1.0})
    out = ReferenceEngine(model).generate([[5, 9, 17]], fallback, k=8, max_new_tokens=6)[0]
    assert out.stats.drafted == 0  # the draft is never sure enough: plain decoding steps


def test_bad_options_are_refused():
    from specplug.methods import OptionsError

    spec = get_registry().method("edgellm")
    with pytest.raises(OptionsError, match="node budget must be an integer >= 1"):
        spec.build(dict(OPTIONS, budget=0))
    with pytest.raises(OptionsError, match="exactly one of draft_model"):
        spec.build({})


@pytest.mark.slow
def test_greedy_output_equals_plain_decoding_on_smollm2_with_a_derived_draft():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts

    model, tokenizer = load_model("smollm2-135m")
    spec = get_registry().method("edgellm")
    options = dict(OPTIONS, draft_layers="0-3")
    out = assert_greedy_lossless(lambda: spec.build(options), model, spec_bench_chat_prompts(tokenizer, 2), k=16,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
