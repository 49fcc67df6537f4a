"""opt_tree: greedy output equals plain decoding (tiny model; SmolLM2 with a derived draft, slow), the
method's own tree rule, and bad options refused."""

from __future__ import annotations

import pytest

from specplug.registry import get_registry
from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama, total_accepted

OPTIONS = {'budget': 8, 'threshold': 0.05, 'draft_layers': '0'}


def test_greedy_output_equals_plain_decoding_on_a_tiny_model():
    model = tiny_llama(vocab_size=128, seed=1)
    spec = get_registry().method("opt_tree")
    out = assert_greedy_lossless(lambda: spec.build(OPTIONS), model, repetitive_prompts(2, 128) + [[5, 9, 17]], k=16,
                                 max_new_tokens=24, verifiers=("tree_verification",))
    assert total_accepted(out) > 0

def test_the_tree_is_opt_trees_growth_and_its_expected_acceptance_beats_a_chain():
    from specplug.kit.drafting import DraftCache
    from specplug.kit.tree_drafting import ModelTopKDrafter
    from specplug.kit.trees import estimated_acceptance, instantiate_shape, opt_tree, TreeShape

    model = tiny_llama(vocab_size=128, seed=1)
    values = []
    for budget in (1, 2, 4, 8, 16):
        drafter = ModelTopKDrafter(DraftCache(model), [5, 9, 17, 5, 9])
        values.append(estimated_acceptance(opt_tree(drafter, budget, threshold=0.0, max_depth=6)))
        drafter.close()
    assert values == sorted(values)  # never falls as the budget grows
    drafter = ModelTopKDrafter(DraftCache(model), [5, 9, 17, 5, 9])
    chain = instantiate_shape(drafter, TreeShape.chain(8))
    assert values[3] >= estimated_acceptance(chain) - 1e-12  # the chain is one of the trees it chose among


def test_bad_options_are_refused():
    from specplug.methods import OptionsError

    spec = get_registry().method("opt_tree")
    with pytest.raises(OptionsError, match="node budget must be an integer >= 1"):
        spec.build(dict(OPTIONS, budget=0))
    with pytest.raises(OptionsError, match="exactly one of draft_model"):
        spec.build({})


@pytest.mark.slow
def test_greedy_output_equals_plain_decoding_on_smollm2_with_a_derived_draft():
    from specplug.models import load_model
    from specplug.testing import spec_bench_chat_prompts

    model, tokenizer = load_model("smollm2-135m")
    spec = get_registry().method("opt_tree")
    options = dict(OPTIONS, draft_layers="0-3")
    out = assert_greedy_lossless(lambda: spec.build(options), model, spec_bench_chat_prompts(tokenizer, 2), k=16,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0


def test_an_eagle3_head_is_a_top_k_source_and_output_stays_plain(tmp_path):
    """source=eagle3: the eagle plugin's proposer, built by id, gives the top-k (a random head here)."""
    from specplug.kit.heads import save_random_head

    model = tiny_llama(vocab_size=128, seed=1, num_layers=4)
    head = save_random_head("eagle3", model, tmp_path / "eagle3", draft_vocab=64)
    spec = get_registry().method("opt_tree")
    options = {"source": "eagle3", "head": str(head), "budget": 8, "threshold": 0.0}
    out = assert_greedy_lossless(lambda: spec.build(options), model, repetitive_prompts(2, 128) + [[7]], k=8,
                                 max_new_tokens=16, verifiers=("tree_verification",))
    proposer = spec.build(options)
    assert proposer.needs >= {__import__("specplug.protocols").protocols.Need.target_hidden_states}
    from specplug.engine import ReferenceEngine

    ReferenceEngine(model).generate([[5, 9, 17, 5, 9]], proposer, k=8, max_new_tokens=4)
    assert proposer.last_tree is not None and len(proposer.last_tree) >= 1
    assert out
