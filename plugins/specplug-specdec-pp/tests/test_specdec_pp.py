"""specdec_pp: training the acceptance head lowers its loss and writes a head that loads back; the stopping
rule stops where the predicted rejection chance crosses the threshold; greedy output equals plain decoding;
at temperature 1 the output is distributed as the target's (chi-square), while a control whose stop looks
at the drawn token is rejected; a threshold outside [0, 1] is refused; the wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from specplug.engine import ReferenceEngine
from specplug.methods import OptionsError
from specplug.protocols import Draft, Need, ProposalRequest, SamplingParams
from specplug.registry import get_registry
from specplug.testing import MethodRegistrationConformance, assert_greedy_lossless, tiny_llama
from specplug.verify.sampling import process_logits
from specplug_specdec_pp.proposer import SpecDecPPOptions, SpecDecPPProposer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from specplug.testing import tiny_training_workspace
    from specplug.train.trainer import TrainConfig, train_head

    workspace = tiny_training_workspace(tmp_path_factory.mktemp("specdec_pp"))
    out = workspace["root"] / "head-specdec_pp"
    train_head(TrainConfig(method="specdec_pp", model=str(workspace["target"]), data=str(workspace["data"]), out=str(out),
                           budget="tiny", quiet=True, draft_layers="0"), log=lambda m: None)
    return workspace, out


def test_training_lowers_the_loss_and_the_head_loads_back(trained):
    from transformers import AutoModelForCausalLM

    from specplug.kit.heads import load_head

    workspace, out = trained
    head, meta = load_head(out, AutoModelForCausalLM.from_pretrained(workspace["target"]))
    training = meta.training
    assert training["held_out"]["loss"] < training["initial_eval"]["loss"], training
    assert head.draft_layers == [0] and meta.extra["draft_layers"] == [0]


def test_greedy_output_equals_plain_decoding_and_the_rule_stops(trained):
    from transformers import AutoModelForCausalLM

    workspace, out = trained
    target = AutoModelForCausalLM.from_pretrained(workspace["target"]).eval()
    made = []

    def build(threshold):
        def factory():
            made.append(get_registry().method("specdec_pp").build({"head": str(out), "threshold": threshold, "max_draft": 6}))
            return made[-1]
        return factory

    prompts = [[5, 9, 14, 5, 9, 14, 5], [20, 21, 22, 23]]
    assert_greedy_lossless(build(0.5), target, prompts, k=6, max_new_tokens=20, eos_token_id=[])
    lengths = {}
    for threshold in (0.0, 1.0):
        made.clear()
        assert_greedy_lossless(build(threshold), target, prompts, k=6, max_new_tokens=20, eos_token_id=[], verifiers=("greedy_match",))
        lengths[threshold] = [n for p in made for n in p.lengths]
    assert set(lengths[0.0]) == {1}, "threshold 0: any predicted risk stops after the first token"
    assert max(lengths[1.0]) == 6, "threshold 1: never stops early"


VOCAB = 6
PROMPT = [1, 4, 2, 5]


def _random_head_target(tmp_path):
    from specplug.kit.heads import save_random_head

    model = tiny_llama(vocab_size=VOCAB, seed=11, num_layers=3, init_std=0.35)
    folder = save_random_head("specdec_pp", model, tmp_path / "head", seed=6)  # a head whose risk depends on the drawn token
    return model, folder


def _joint(model, proposer, draws):
    engine = ReferenceEngine(model, eos_token_id=[])
    sampling = SamplingParams(temperature=1.0)
    results = engine.generate([PROMPT] * draws, proposer, "speculative_sampling", k=3, max_new_tokens=3, sampling=sampling)
    counts = np.zeros(VOCAB * VOCAB)
    for r in results:
        counts[r.token_ids[0] * VOCAB + r.token_ids[1]] += 1
    with torch.inference_mode():
        p0 = process_logits(model(input_ids=torch.tensor([PROMPT])).logits[0, -1:].float(), sampling)[0]
        p1 = process_logits(model(input_ids=torch.tensor([PROMPT + [t] for t in range(VOCAB)])).logits[:, -1].float(), sampling)
    expected = (p0[:, None] * p1).reshape(-1).numpy().astype(np.float64) * draws
    keep = expected > 1e-9
    return chisquare(counts[keep], expected[keep] * counts[keep].sum() / expected[keep].sum()).pvalue


class _PeekingProposer(SpecDecPPProposer):
    """The control: stops on the drawn token (drops it when q gives it < 0.3) but reports q unchanged."""

    def propose(self, request):
        draft = super().propose(request)
        if draft.probs is None or not len(draft):
            return draft
        q = draft.probs
        keep = 0
        while keep < len(draft) and float(q[keep, draft.token_ids[keep]]) >= 0.3:
            keep += 1
        return Draft.chain(draft.token_ids[:keep], probs=q[:keep]) if keep else Draft.empty()


@pytest.mark.slow
def test_the_stopping_rule_does_not_bias_sampled_output_and_the_control_is_rejected(tmp_path):
    model, folder = _random_head_target(tmp_path)
    options = SpecDecPPOptions(head=str(folder), threshold=0.5, max_draft=3)
    proposer = SpecDecPPProposer(options)
    assert _joint(model, proposer, 3000) > 1e-3
    lengths = proposer.lengths
    assert 1 in lengths and max(lengths) > 1, "the rule must stop early sometimes and not always"
    assert _joint(model, _PeekingProposer(options), 3000) < 1e-6


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(OptionsError, match="threshold must lie in"):
        get_registry().method("specdec_pp").build({"threshold": threshold})


class TestSpecDecPPRegistration(MethodRegistrationConformance):
    method = "specdec_pp"
    entry_point = "specdec_pp"
    distribution = "specplug-specdec-pp"
    plugin_module = "specplug_specdec_pp.plugin"
    options_class = SpecDecPPOptions
    proposer_class = SpecDecPPProposer
    needs = frozenset({Need.target_model})
    options = {"threshold": 0.5}
    bad_options = [({"threshold": 2}, "threshold"), ({"max_draft": 0}, "max_draft")]
