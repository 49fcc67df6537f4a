"""eesd: the Thompson-sampling controller settles on the best fixed length of a simulated acceptance
process; training the early exit lowers its loss and writes a head that loads back; greedy output equals
plain decoding; bad options are refused; the wiring."""

from __future__ import annotations

import numpy as np
import pytest


from specplug.methods import OptionsError
from specplug.protocols import Need
from specplug.registry import get_registry
from specplug.testing import MethodRegistrationConformance, assert_greedy_lossless, tiny_llama
from specplug_eesd.controller import ThompsonLengthController, best_length, tokens_per_cost
from specplug_eesd.proposer import EesdOptions, EesdProposer


def _simulate(controller, theta: float, rounds: int, rng) -> list[int]:
    """I.i.d. acceptance at rate ``theta``; returns the chosen lengths."""
    chosen = []
    for _ in range(rounds):
        length = controller.choose()
        chosen.append(length)
        accepted = 0
        while accepted < length and rng.random() < theta:
            accepted += 1
        controller.update(length, accepted)
    return chosen


@pytest.mark.parametrize("theta, cost", [(0.85, 0.1), (0.6, 0.3), (0.3, 0.5), (0.95, 0.02)])
def test_thompson_sampling_settles_on_the_best_fixed_length(theta, cost):
    max_length = 10
    # the best fixed length from the acceptance process's exact distribution (not the controller's closed form):
    # a draft of n keeps a tokens with probability theta^a (1 - theta) for a < n, theta^n for a = n
    def simulated_rate(length):
        keep = [theta**a * (1 - theta) for a in range(length)] + [theta**length]
        return sum(p * (a + 1) for a, p in enumerate(keep)) / (1 + cost * length)
    rates = {n: simulated_rate(n) for n in range(1, max_length + 1)}
    best = max(rates, key=rates.get)
    near_best = {n for n, r in rates.items() if r >= 0.99 * rates[best]}  # simulation noise: lengths within 1%
    controller = ThompsonLengthController(max_length, cost, seed=3)
    chosen = _simulate(controller, theta, 600, np.random.default_rng(7))
    late = chosen[-200:]
    mode = max(set(late), key=late.count)
    assert mode in near_best, (mode, best, near_best)
    assert sum(n in near_best for n in late) >= 0.8 * len(late)
    assert abs(controller.mean - theta) < 0.05
    assert best_length(theta, max_length, cost) in near_best  # the analytic model agrees with the simulation


def test_early_rounds_explore():
    controller = ThompsonLengthController(8, 0.1, seed=0)
    assert len({controller.choose() for _ in range(50)}) > 2  # a flat prior spreads the choices


def test_tokens_per_cost_by_hand():
    # theta 0.5, length 2: 1 + 0.5 + 0.25 = 1.75 tokens for cost 1 + 2 * 0.25 = 1.5
    assert tokens_per_cost(0.5, 2, 0.25) == pytest.approx(1.75 / 1.5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from specplug.testing import tiny_training_workspace
    from specplug.train.trainer import TrainConfig, train_head

    workspace = tiny_training_workspace(tmp_path_factory.mktemp("eesd"))
    out = workspace["root"] / "head-eesd"
    lines: list[str] = []
    train_head(TrainConfig(method="eesd", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True), log=lines.append)
    return workspace, out, lines


def test_training_lowers_the_loss_and_the_head_loads_back(trained):
    from transformers import AutoModelForCausalLM

    from specplug.kit.heads import load_head

    workspace, out, lines = trained
    target = AutoModelForCausalLM.from_pretrained(workspace["target"])
    head, meta = load_head(out, target)
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert training["last_loss"] < training["first_loss"]
    assert head.exit_layer == 1 and meta.hidden_state_layers == [1]  # half of the tiny target's 3 layers
    assert any(float(layer.weight.detach().abs().sum()) > 0 for layer in head.layers), "the adapter is still the identity"


@pytest.mark.parametrize("controller", ["thompson", "fixed"])
def test_greedy_output_equals_plain_decoding(trained, controller):
    from transformers import AutoModelForCausalLM

    workspace, out, _ = trained
    target = AutoModelForCausalLM.from_pretrained(workspace["target"]).eval()
    proposers = []

    def build():
        proposers.append(get_registry().method("eesd").build({"head": str(out), "controller": controller, "max_draft": 5}))
        return proposers[-1]

    assert_greedy_lossless(build, target, [[5, 9, 14, 5, 9, 14, 5], [20, 21, 22, 23]], k=6, max_new_tokens=20, eos_token_id=[])
    lengths = [n for p in proposers for n in p.lengths]
    if controller == "fixed":  # max_draft, cut only by the length budget at the end of a request
        assert max(lengths) == 5 and lengths.count(5) >= len(lengths) // 2
    else:  # the controller chooses: lengths vary
        assert len(set(lengths)) > 1


def test_a_missing_head_is_a_clear_error(tmp_path):
    from specplug.engine import ReferenceEngine

    engine = ReferenceEngine(tiny_llama(vocab_size=32, num_layers=3), eos_token_id=[])
    proposer = get_registry().method("eesd").build({"head": str(tmp_path / "nothing")})
    with pytest.raises(Exception, match="does not exist"):
        engine.generate([[1, 2, 3]], proposer, max_new_tokens=4)


@pytest.mark.parametrize("bad, word", [({"max_draft": 0}, "max_draft"), ({"prior_alpha": 0}, "prior_alpha"),
                                       ({"controller": "fixed", "cost_ratio": 0.2}, "cost_ratio")])
def test_bad_options_are_refused(bad, word):
    with pytest.raises(OptionsError, match=word):
        get_registry().method("eesd").build(bad)


class TestEesdRegistration(MethodRegistrationConformance):
    method = "eesd"
    entry_point = "eesd"
    distribution = "specplug-eesd"
    plugin_module = "specplug_eesd.plugin"
    options_class = EesdOptions
    proposer_class = EesdProposer
    needs = frozenset({Need.target_model})
    options = {"max_draft": 4}
    bad_options = [({"max_draft": 0}, "max_draft"), ({"controller": "ucb"}, "controller")]
