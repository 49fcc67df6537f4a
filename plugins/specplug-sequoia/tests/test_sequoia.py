"""Sequoia: its verifier is exact (chi-square, with a wrong-residual control it must reject), its
optimiser follows the cost curve, its profiles belong to one target, and it is lossless greedy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.protocols import Draft, SamplingParams
from specplug_sequoia.optimizer import cost_function, parse_cost_curve, pick_budget
from specplug_sequoia.verifier import SequoiaVerifier

P_LOGITS = torch.log(torch.tensor([[0.35, 0.25, 0.2, 0.1, 0.06, 0.04]]))
Q = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.25])  # the draft disagrees with the target


def first_tokens(verifier, trials: int, seed: int = 0) -> np.ndarray:
    """The first emitted token of ``trials`` verifications of a star of three siblings drawn from Q
    without replacement."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(Q.size)
    logits = P_LOGITS.repeat(4, 1)  # root + 3 children (their rows are never the first token)
    for _ in range(trials):
        keys = np.log(Q) + rng.gumbel(size=Q.size)
        children = np.argsort(-keys)[:3]  # sampled without replacement, in draw order
        draft = Draft(children, np.array([-1, -1, -1]), np.tile(Q, (3, 1)))
        result = verifier.verify(logits, draft, SamplingParams(temperature=1.0), gen)
        counts[result.tokens[0]] += 1
    return counts


def test_sampling_without_replacement_verification_is_exact_and_the_wrong_residual_is_caught():
    p = torch.softmax(P_LOGITS[0].double(), -1).numpy()
    p = p / p.sum()
    trials = 4000
    exact = first_tokens(SequoiaVerifier(), trials)
    assert chisquare(exact, p * trials).pvalue > 1e-3
    wrong = first_tokens(SequoiaVerifier(update_q=False), trials)  # SpecInfer's residual over SWR draws
    assert chisquare(wrong, p * trials).pvalue < 1e-6


def test_optimiser_picks_a_big_tree_on_flat_costs_and_a_small_one_on_linear_costs():
    acceptance = [0.7, 0.3, 0.15, 0.08]
    h200 = cost_function(parse_cost_curve("1:2.9,8:3.7,64:3.9"))
    linear = cost_function({0: 0.010, 64: 0.040})  # a CPU-like cost: more nodes cost more
    flat = pick_budget(acceptance, h200, 0.0, max_budget=64)
    steep = pick_budget(acceptance, linear, 0.0, max_budget=64)
    assert flat.budget >= 32 and steep.budget < flat.budget
    assert flat.speedup > steep.speedup > 1.0
    with pytest.raises(ValueError, match="TOKENS:MILLISECONDS"):
        parse_cost_curve("fast")
    with pytest.raises(ValueError, match="node budget"):
        pick_budget(acceptance, h200, 0.0, max_budget=0)


def test_greedy_output_equals_plain_decoding_and_a_foreign_profile_is_refused(tmp_path, monkeypatch):
    from specplug.kit.trees import AcceptanceProfile, ProfileMismatchError
    from specplug.registry import get_registry
    from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama, total_accepted

    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    model = tiny_llama(vocab_size=128, seed=1)
    prompts = repetitive_prompts(2, 128) + [[5, 9, 17]]
    spec = get_registry().method("sequoia")
    options = {"draft_layers": "0", "budget": 8, "profile_tokens": 12, "profile_prompts": 2}
    out = assert_greedy_lossless(lambda: spec.build(options), model, prompts, k=8, max_new_tokens=24,
                                 verifiers=("tree_verification", "sequoia_swr"))
    assert total_accepted(out) > 0
    foreign = AcceptanceProfile((0.5, 0.2), "sha256:" + "0" * 64, "draft:x", 0.0, 10).save(tmp_path / "other.json")
    proposer = spec.build(dict(options, profile=str(foreign)))
    from specplug.engine import ReferenceEngine

    with pytest.raises(ProfileMismatchError, match="measured for target"):
        ReferenceEngine(model).generate(prompts[:1], proposer, k=8, max_new_tokens=4)


def test_bad_options_are_refused():
    from specplug.methods import OptionsError
    from specplug.registry import get_registry

    spec = get_registry().method("sequoia")
    with pytest.raises(OptionsError, match="node budget must be an integer >= 1"):
        spec.build({"draft_layers": "0", "budget": 0})
    with pytest.raises(OptionsError, match="exactly one of draft_model"):
        spec.build({})


@pytest.mark.slow
def test_greedy_output_equals_plain_decoding_on_smollm2_with_a_derived_draft_and_its_tree_beats_the_chain(tmp_path, monkeypatch):
    from specplug.kit.trees import TreeShape, expected_accepted
    from specplug.models import load_model
    from specplug.registry import get_registry
    from specplug.testing import assert_greedy_lossless, spec_bench_chat_prompts, total_accepted

    import specplug_sequoia.proposer as sequoia

    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    model, tokenizer = load_model("smollm2-135m")
    spec = get_registry().method("sequoia")
    options = {"draft_layers": "0-3", "budget": 16, "profile_prompts": 2, "profile_tokens": 24}
    out = assert_greedy_lossless(lambda: spec.build(options), model, spec_bench_chat_prompts(tokenizer, 2), k=16,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tokenizer)
    assert total_accepted(out) > 0
    plan = next(p for key, p in sequoia._PLANS.items() if '"budget":16' in key[1])
    acceptance = plan["profile"].acceptance
    shape = plan["shapes"][16]
    assert expected_accepted(shape, acceptance) >= expected_accepted(TreeShape.chain(16), acceptance)


def test_over_an_eagle3_head_the_profile_and_tree_come_from_the_head(tmp_path, monkeypatch):
    from specplug.kit.heads import save_random_head
    from specplug.registry import get_registry
    from specplug.testing import assert_greedy_lossless, repetitive_prompts, tiny_llama

    import specplug_sequoia.proposer as sequoia

    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    model = tiny_llama(vocab_size=128, seed=1, num_layers=4)
    head = save_random_head("eagle3", model, tmp_path / "eagle3", draft_vocab=64)
    spec = get_registry().method("sequoia")
    options = {"source": "eagle3", "head": str(head), "budget": 6, "profile_prompts": 2, "profile_tokens": 12}
    assert_greedy_lossless(lambda: spec.build(options), model, repetitive_prompts(2, 128) + [[7]], k=6,
                           max_new_tokens=16, verifiers=("tree_verification",))
    plan = next(p for key, p in sequoia._PLANS.items() if "eagle3" in key[1])
    assert plan["profile"].drafter.startswith("eagle3:") and plan["profile"].samples > 0
