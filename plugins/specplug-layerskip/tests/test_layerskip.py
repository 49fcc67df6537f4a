"""specplug-layerskip: the skip view, the profile format, the search, calibration and the proposers."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.methods import OptionsError
from specplug.protocols import Draft, Need, ProposalRequest, SamplingParams
from specplug.testing import repetitive_prompts, tiny_llama
from specplug_layerskip import plugin
from specplug_layerskip.calibration import (
    EXCLUDED_PER_CATEGORY,
    Sequence_,
    calibration_prompts,
    reference_sequences,
    simulate,
    teacher_forced,
)
from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
from specplug_layerskip.profile import (
    LayerSkipProfile,
    ProfileError,
    SkipSet,
    default_profile_path,
    load_profile,
    model_fingerprint,
)
from specplug_layerskip.proposer import DraftVerifyProposer, SwiftProposer, draft_tree
from specplug_layerskip.search import MaskOptimizer
from specplug_layerskip.skipping import PartialLayer, draft_cost, skip_view


def logits_of(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


# -- the skip view ---------------------------------------------------------------------------------

def test_a_view_runs_exactly_the_blocks_it_keeps_and_leaves_the_model_alone(tiny_model):
    ids = [5, 9, 17, 3, 3, 8]
    before = logits_of(tiny_model, ids)
    skip = SkipSet(attention=(1,), mlp=(2, 3), )
    view = skip_view(tiny_model, skip)
    inner = tiny_model.model
    with torch.inference_mode():  # by hand: layer 0 whole, 1 MLP only, 2 attention only, 3 attention only
        h = inner.embed_tokens(torch.tensor([ids]))
        pos = torch.arange(len(ids))[None]
        emb = inner.rotary_emb(h, position_ids=pos)
        mask = torch.full((len(ids), len(ids)), float("-inf")).triu(1)[None, None]
        h = inner.layers[0](h, attention_mask=mask, position_embeddings=emb, position_ids=pos)
        layer = inner.layers[1]
        h = h + layer.mlp(layer.post_attention_layernorm(h))
        for i in (2, 3):
            layer = inner.layers[i]
            h = h + layer.self_attn(layer.input_layernorm(h), position_embeddings=emb, attention_mask=mask)[0]
        expected = tiny_model.lm_head(inner.norm(h))[0]
    assert torch.allclose(logits_of(view, ids), expected, atol=1e-5)
    assert torch.equal(logits_of(tiny_model, ids), before)
    assert [type(layer).__name__ for layer in view.model.layers] == ["LlamaDecoderLayer", "PartialLayer", "PartialLayer", "PartialLayer"]
    assert [l.self_attn.layer_idx for l in view.model.layers if hasattr(l, "self_attn")] == [0, 1, 2]
    assert [l.self_attn.layer_idx for l in inner.layers] == [0, 1, 2, 3]


def test_a_layer_with_both_blocks_skipped_is_dropped(tiny_model):
    view = skip_view(tiny_model, SkipSet(attention=(1, 2), mlp=(2,)))
    assert len(view.model.layers) == 3 and view.config.num_hidden_layers == 3
    assert isinstance(view.model.layers[1], PartialLayer) and not view.model.layers[1].run_attention


def test_no_weight_is_copied_the_view_runs_the_targets_own_tensors(tiny_model, tiny_profiles):
    proposer = DraftVerifyProposer(DraftVerifyOptions(profile=str(tiny_profiles["draft_verify"])))
    engine = ReferenceEngine(tiny_model)
    proposer.bind_target(engine.target_info())
    target = {p.data_ptr() for p in tiny_model.parameters()}
    drafted = {p.data_ptr() for p in proposer.view.parameters()}
    assert drafted and drafted <= target
    assert proposer.view.model.embed_tokens.weight.data_ptr() == tiny_model.model.embed_tokens.weight.data_ptr()
    assert proposer.view.lm_head.weight.data_ptr() == tiny_model.lm_head.weight.data_ptr()


def test_the_reduced_head_holds_only_its_rows(tiny_model, tiny_profiles):
    proposer = DraftVerifyProposer(DraftVerifyOptions(profile=str(tiny_profiles["draft_verify"]), vocab_size=12))
    proposer.bind_target(ReferenceEngine(tiny_model).target_info())
    assert proposer.view.lm_head.weight.shape[0] == len(proposer.vocab) <= 13
    shared = {p.data_ptr() for p in proposer.view.model.parameters()}
    assert shared <= {p.data_ptr() for p in tiny_model.parameters()}


def test_draft_cost_counts_multiply_adds(tiny_model):
    assert draft_cost(tiny_model.config, SkipSet()) == pytest.approx(1.0)
    half = draft_cost(tiny_model.config, SkipSet(attention=(1, 2), mlp=(1, 2)))
    assert 0.3 < half < 0.8
    assert draft_cost(tiny_model.config, SkipSet(), draft_vocab=8) < 1.0


# -- the profile -------------------------------------------------------------------------------------

def profile_json(path) -> dict:
    return json.loads(path.read_text())


def test_the_calibrated_profile_is_valid_and_found_by_fingerprint(tiny_model, tiny_profiles, tmp_path, monkeypatch):
    raw = profile_json(tiny_profiles["draft_verify"])
    profile = LayerSkipProfile.model_validate(raw)
    assert profile.format_version == 1 and profile.method == "draft_verify"
    assert profile.model_fingerprint == model_fingerprint(tiny_model)
    assert 0 <= profile.calibration.acceptance <= 1 and profile.calibration.mat >= 1
    assert profile.calibration.prompt_ids == ["tiny-0", "tiny-1", "tiny-2"]
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    path = default_profile_path(profile.model_fingerprint, "draft_verify")
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text(tiny_profiles["draft_verify"].read_text())
    assert load_profile("draft_verify", model_fingerprint(tiny_model)) == profile


def test_fingerprint_is_the_same_in_bfloat16_and_differs_for_other_weights(tiny_model):
    import copy

    assert model_fingerprint(copy.deepcopy(tiny_model).to(torch.bfloat16)) == model_fingerprint(tiny_model)
    assert model_fingerprint(tiny_llama(vocab_size=128, seed=2, num_layers=4)) != model_fingerprint(tiny_model)


def test_a_missing_profile_names_the_command_that_makes_one(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECPLUG_CACHE", str(tmp_path))
    engine = ReferenceEngine(tiny_model)
    with pytest.raises(ProfileError, match=r"no draft_verify layer-skip profile .* specplug layerskip calibrate --model .* --method draft_verify"):
        engine.generate([[1, 2, 3]], DraftVerifyProposer(DraftVerifyOptions()), max_new_tokens=4)
    with pytest.raises(ProfileError, match="--method swift"):
        SwiftProposer(SwiftOptions(profile=str(tmp_path / "nope.json"))).bind_target(engine.target_info())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, "profile format 2 is not the format 1"),
        ({"model_fingerprint": "0123456789abcdef"}, "made for another model"),
        ({"skip": {"attention": [1, 9], "mlp": []}}, "skip set names layers \\[9\\] but the model has 4"),
        ({"skip": {"attention": [0, 1, 2, 3], "mlp": []}}, "skips every attention block"),
        ({"skip": {"attention": [1, 1], "mlp": []}}, "layer ids repeat"),
        ({"threshold": 1.5}, "threshold"),
        ({"method": "swift"}, "is a swift profile, not draft_verify|needs skip_ratio"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_profiles_are_refused_with_the_fix(tiny_model, tiny_profiles, tmp_path, change, message):
    raw = profile_json(tiny_profiles["draft_verify"])
    raw.update(change)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match=message) as err:
        load_profile("draft_verify", model_fingerprint(tiny_model), bad)
    assert "specplug layerskip calibrate" in str(err.value)


def test_a_profile_that_is_not_json_is_refused(tiny_model, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not readable JSON"):
        load_profile("draft_verify", model_fingerprint(tiny_model), bad)


def test_too_large_a_reduced_vocabulary_is_a_clear_error(tiny_model, tiny_profiles):
    ranked = len(profile_json(tiny_profiles["draft_verify"])["vocab_ranking"])
    proposer = DraftVerifyProposer(DraftVerifyOptions(profile=str(tiny_profiles["draft_verify"]), vocab_size=ranked + 1))
    with pytest.raises(ProfileError, match=f"ranks only {ranked} tokens"):
        proposer.bind_target(ReferenceEngine(tiny_model).target_info())


def test_skip_masks_round_trip():
    skip = SkipSet(attention=(3, 1), mlp=(2,))
    assert skip.attention == (1, 3)
    assert SkipSet.from_mask(skip.as_mask(5), 5) == skip
    with pytest.raises(ValueError, match="10 entries"):
        SkipSet.from_mask([0, 1], 5)


# -- search and calibration --------------------------------------------------------------------------

def test_the_optimizer_respects_locks_counts_and_finds_a_planted_optimum():
    target = np.zeros(20, dtype=np.int8)
    target[[3, 5, 7, 11, 13]] = 1
    opt = MaskOptimizer(20, locked=(0, 19), skips=5, seed=0, keep_one_of=range(10))
    for i in range(30):
        mask = opt.suggest() if i >= 4 else opt.random_mask()
        assert mask.sum() == 5 and not mask[[0, 19]].any() and not mask[:10].all()
        opt.register(mask, -float(np.abs(mask - target).sum()))
    best, value = opt.best
    random_best = max(-float(np.abs(MaskOptimizer(20, locked=(0, 19), skips=5, seed=s).random_mask() - target).sum()) for s in range(30))
    assert value >= random_best and value >= -4


def test_calibration_prompts_avoid_every_benchmark_and_test_prompt():
    from transformers import AutoTokenizer

    from specplug.bench.prompts import load_prompts
    from specplug.models import resolve_model
    from specplug.testing import spec_bench_chat_prompts

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    picked = calibration_prompts(tokenizer, 26, max_prompt_tokens=4096)
    assert len(picked) == 26
    excluded, _ = load_prompts(f"spec-bench:{EXCLUDED_PER_CATEGORY}")
    assert not {label for label, _ in picked} & {p.id for p in excluded}
    tests = {tuple(ids) for ids in spec_bench_chat_prompts(tokenizer, 13)}
    assert not tests & {tuple(ids) for _, ids in picked}
    assert len({json.loads(line)["category"] for line in _questions() if str(json.loads(line)["question_id"]) in {l for l, _ in picked}}) == 13


def _questions():
    from specplug.bench.prompts import spec_bench_path

    return [line for line in spec_bench_path().read_text().splitlines() if line.strip()]


def test_the_simulation_predicts_the_engines_accepted_tokens_exactly(tiny_model):
    """Greedy acceptance follows from one teacher-forced pass: the search's objective is exact there."""
    from specplug_layerskip.calibrate import calibrate

    engine = ReferenceEngine(tiny_model)
    prompts = [(str(i), p) for i, p in enumerate(repetitive_prompts(3, 128, seed=4))]
    sequences = reference_sequences(engine, prompts, 20)
    skip = SkipSet(attention=(2,), mlp=(1,))
    for threshold in (0.0, 0.4):
        run = simulate(teacher_forced(skip_view(tiny_model, skip), sequences), 4, threshold, 0.5, 0.1)
        profile = calibrate(tiny_model, None, "draft_verify", prompts=prompts, new_tokens=4, evaluations=1, texts=[], cache_continuations=False)
        profile = profile.model_copy(update={"skip": skip, "threshold": threshold})
        results = engine.generate([s.prompt for s in sequences], DraftVerifyProposer(DraftVerifyOptions(), profile), k=4, max_new_tokens=20)
        assert sum(r.stats.accepted for r in results) == run.accepted
        assert sum(r.stats.steps for r in results) == run.steps
        assert [r.token_ids for r in results] == [s.continuation for s in sequences]


# -- drafting ----------------------------------------------------------------------------------------

def test_swift_trees_respect_the_budget_and_put_deterministic_siblings_first_when_sampling(tiny_model):
    from specplug.kit.drafting import DraftCache

    view = skip_view(tiny_model, SkipSet(mlp=(1,)))
    for budget in (1, 3, 6):
        greedy = draft_tree(DraftCache(view), [5, 6, 7], budget, None, None, 0.0, (2, 3, 3, 4))
        assert 1 <= len(greedy) <= budget and greedy.is_tree and greedy.probs is None
        sampling = SamplingParams(temperature=1.0)
        draft = draft_tree(DraftCache(view), [5, 6, 7], budget, sampling, torch.Generator().manual_seed(0), 0.0, (2, 3, 3, 4))
        assert len(draft) <= budget
        q = draft.probs
        assert q.shape == (len(draft), 128) and torch.allclose(q.sum(-1), torch.ones(len(draft)))
        parents = draft.parent_array().tolist()
        for parent in set(parents):  # under each parent: one-hot siblings, then at most one sampled node, last
            rows = [i for i, p in enumerate(parents) if p == parent]
            one_hot = [bool((q[i] == 1).any()) and float(q[i].max()) == 1.0 for i in rows]
            sampled = [i for i, flag in zip(rows, one_hot) if not flag]
            assert len(sampled) <= 1 and (not sampled or sampled[0] == rows[-1])
    stopped = draft_tree(DraftCache(view), [5, 6, 7], 4, None, None, 0.999, (1, 1, 1, 3))
    assert len(stopped) == 3 and stopped.parents.tolist() == [-1, -1, -1]  # no chain: 3 candidates at depth 1


def test_proposing_before_binding_says_what_is_needed():
    request = ProposalRequest("r", np.array([1, 2, 3]), 3, 4)
    with pytest.raises(RuntimeError, match="before bind_target"):
        DraftVerifyProposer(DraftVerifyOptions()).propose(request)
    with pytest.raises(RuntimeError, match="before bind_target"):
        SwiftProposer(SwiftOptions()).propose(request)


def test_an_engine_without_the_model_is_refused():
    from specplug.protocols import TargetInfo

    with pytest.raises(ValueError, match="needs the engine's model"):
        DraftVerifyProposer(DraftVerifyOptions()).bind_target(TargetInfo(vocab_size=128))


def test_swift_optimises_its_layer_set_on_the_fly(tiny_model, tiny_profiles):
    options = SwiftOptions(profile=str(tiny_profiles["swift"]), min_generated=4, context_window=16, steps_per_request=5,
                           bayes_interval=2, target_matchness=1.0, threshold=0.0)
    proposer = SwiftProposer(options)
    engine = ReferenceEngine(tiny_model)
    prompts = repetitive_prompts(2, 128, seed=8)
    plain = engine.generate(prompts, max_new_tokens=24)
    out = engine.generate(prompts, proposer, k=4, max_new_tokens=24)
    assert [r.token_ids for r in out] == [r.token_ids for r in plain]
    assert proposer.iterations == 10 and len(proposer.search.values) == 10
    assert all(int(m.sum()) == proposer.search.min_skips for m in proposer.search.masks)
    kept = [h for h in proposer.history if h[2]]
    assert proposer.score == max([proposer.score] + [h[1] for h in proposer.history])
    assert not kept or proposer.skip == SkipSet.from_mask(proposer.search.masks[kept[-1][0] - 1], 4)


# -- lossless sampling ---------------------------------------------------------------------------------

def exact_two_token_distribution(model, prompt, temperature):
    """p(x1, x2 | prompt) of the target at ``temperature``, [V, V]."""
    vocab = model.config.vocab_size
    with torch.inference_mode():
        first = torch.softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1] / temperature, -1)
        batch = torch.tensor([prompt + [x] for x in range(vocab)])
        second = torch.softmax(model(input_ids=batch).logits[:, -1] / temperature, -1)
    return (first[:, None] * second).double().numpy()


@pytest.mark.parametrize("method", ["draft_verify", "swift"])
def test_sampled_output_is_distributed_as_the_target(method, tmp_path, make_tiny_profile):
    """Chi-square test on the first two sampled tokens (drafts with q; swift trees also carry
    deterministic siblings), with a confidence threshold that stops drafts early."""
    from scipy.stats import chisquare

    model = tiny_llama(vocab_size=12, seed=5, num_layers=4, hidden=32, intermediate=64, init_std=0.3)
    path = make_tiny_profile(model, method, tmp_path / f"{method}.json")
    options = {"profile": str(path), "threshold": 0.3, "seed": 1}
    proposer = (SwiftProposer(SwiftOptions(**options, optimize=False)) if method == "swift"
                else DraftVerifyProposer(DraftVerifyOptions(**options)))
    prompt = [3, 7, 1, 4]
    temperature = 1.0
    runs = 1500
    engine = ReferenceEngine(model)
    # 3 new tokens: the first step drafts up to 2 (a chain of 2, or a tree), so q is checked past depth 1
    out = engine.generate([prompt] * runs, proposer, k=3, max_new_tokens=3, sampling=SamplingParams(temperature=temperature), seed=0)
    assert sum(r.stats.accepted for r in out) > runs // 10, "drafts were almost never accepted: the test would not test q"
    assert sum(r.stats.drafted for r in out) < 2 * runs + runs, "the threshold never stopped a draft"
    exact = exact_two_token_distribution(model, prompt, temperature).reshape(-1)
    observed = np.zeros_like(exact)
    for r in out:
        observed[r.token_ids[0] * 12 + r.token_ids[1]] += 1
    expected = exact / exact.sum() * runs
    big = expected >= 5  # pool the rare cells into one
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    assert chisquare(obs, exp).pvalue > 1e-3


def test_a_sampled_chain_stops_on_the_drafts_confidence_never_on_the_sampled_token(tiny_model):
    """With ``stop_below`` just under the draft's largest probability at the first position, the
    first token is always drafted, whichever token the sample picks (stopping on the sampled token's
    own probability would draft from a truncated q and bias the output)."""
    from specplug.kit.drafting import DraftCache, draft_chain

    view = skip_view(tiny_model, SkipSet(mlp=(1,)))
    committed = [5, 6, 7]
    cache = DraftCache(view)
    from specplug.verify.sampling import process_logits

    sampling = SamplingParams(temperature=1.5)
    top = float(process_logits(cache.sync(committed)[None], sampling).max())  # confidence after temperature
    tokens = set()
    for seed in range(60):
        draft = draft_chain(cache, committed, 1, sampling, torch.Generator().manual_seed(seed), stop_below=top * 0.99)
        assert len(draft) == 1
        tokens.add(int(draft.token_ids[0]))
    assert len(tokens) > 1, "the draft always sampled the same token: the test says nothing"
    assert len(draft_chain(cache, committed, 1, sampling, torch.Generator().manual_seed(0), stop_below=top * 1.01)) == 0


# -- wiring --------------------------------------------------------------------------------------------

def test_hooks_register_both_methods_with_their_needs():
    specs = []
    plugin.specplug_register_methods(specs.append)
    assert {s.id for s in specs} == {"draft_verify", "swift"}
    assert all(s.needs == frozenset({Need.target_model}) for s in specs)
    (swift,) = [s for s in specs if s.id == "swift"]
    assert swift.tree
    with pytest.raises(OptionsError, match="vocab_size"):
        swift.validate_options({"vocab_size": 0})
    with pytest.raises(OptionsError, match="candidates"):
        swift.validate_options({"candidates": [1, 0, 2, 3]})


def test_installed_entry_point_and_command():
    (ep,) = [ep for ep in entry_points(group="specplug") if ep.name == "layerskip"]
    assert ep.value == "specplug_layerskip.plugin" and ep.dist.name == "specplug-layerskip"
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["layerskip", "calibrate", "--help"])
    assert result.exit_code == 0 and "--method" in result.output
    result = CliRunner().invoke(cli, ["layerskip", "calibrate", "--model", "smollm2-135m", "--k", "0"])
    assert result.exit_code != 0 and "--k" in result.output


def test_show_prints_a_profile(tiny_profiles):
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["layerskip", "show", "--profile", str(tiny_profiles["swift"]), "--method", "swift"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["method"] == "swift"


def test_sequence_type_is_plain_data():
    seq = Sequence_([1, 2], [3])
    assert seq.prompt == [1, 2] and seq.continuation == [3]
