"""The image model in the reference engine: exact speculative sampling and SJD preserve the target's
distribution (chi-square), LANTERN with delta = 0 is exact token for token, delta > 0 accepts more."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from specplug.engine import GenerationStats, ReferenceEngine
from specplug.protocols import BaseProposer, Draft, SamplingParams
from specplug_image.digits import load_split
from specplug_image.drafter import DraftModelProposer
from specplug_image.generate import build_setting, sample_images
from specplug_lantern.verifier import LanternOptions, LanternVerifier
from specplug_sjd.proposer import SJDOptions, SJDProposer

SAMPLING = SamplingParams(temperature=1.0)
SAMPLES = 700
PREFIX_PIXELS = 28  # the prompt: a class token and the first 28 pixels of a real test image (mid-stroke)


@pytest.fixture(scope="module")
def prompt():
    return load_split().sequences("test")[3][: 1 + PREFIX_PIXELS].tolist()


def exact_pair_probs(target, prompt) -> np.ndarray:
    """The target's joint distribution [V, V] of the next two tokens after ``prompt``."""
    with torch.inference_mode():
        p1 = torch.softmax(target(torch.tensor([prompt])).logits[0, -1].double(), -1)  # [V]
        vocab = p1.shape[0]
        batch = torch.tensor([prompt + [t] for t in range(vocab)])  # [V, n + 1]
        p2 = torch.softmax(target(batch).logits[:, -1].double(), -1)  # [V, V]
    return (p1[:, None] * p2).numpy()


def pooled_chisquare(counts: np.ndarray, expected_probs: np.ndarray) -> float:
    """Goodness-of-fit p-value, cells with expected count < 5 pooled into one."""
    counts, expected = counts.ravel(), expected_probs.ravel() * counts.sum()
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum())
    if wanted[-1] == 0:
        observed, wanted = observed[:-1], wanted[:-1]
    return float(stats.chisquare(observed, wanted * observed.sum() / wanted.sum()).pvalue)


def two_sample_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square test that two token samples come from one distribution (sparse cells pooled)."""
    vocab = int(max(a.max(), b.max())) + 1
    table = np.stack([np.bincount(a, minlength=vocab), np.bincount(b, minlength=vocab)])
    big = table.sum(0) >= 10
    table = np.concatenate([table[:, big], table[:, ~big].sum(1, keepdims=True)], axis=1)
    table = table[:, table.sum(0) > 0]
    return float(stats.chi2_contingency(table).pvalue)


def run(engine, prompt, proposer, verifier, k=3, new=4, seed=0):
    results = engine.generate([prompt] * SAMPLES, proposer, verifier, k=k, max_new_tokens=new, sampling=SAMPLING, seed=seed)
    return np.array([r.token_ids for r in results]), GenerationStats.merge(r.stats for r in results)


@pytest.fixture(scope="module")
def plain_tokens(tiny_digits, prompt):
    target, _ = tiny_digits
    return run(ReferenceEngine(target), prompt, None, "speculative_sampling", seed=10_000)[0]


@pytest.mark.parametrize("drafter", ["draft", "sjd"])
def test_exact_speculative_sampling_preserves_the_image_distribution(tiny_digits, prompt, plain_tokens, drafter):
    target, draft = tiny_digits
    proposer = DraftModelProposer(draft, seed=1) if drafter == "draft" else SJDProposer(SJDOptions(window=3, seed=1))
    tokens, stat = run(ReferenceEngine(target), prompt, proposer, "speculative_sampling")
    assert stat.accepted > 0.2 * SAMPLES, "too few accepted drafts for the test to mean anything"
    pairs = np.zeros((27, 27))
    np.add.at(pairs, (tokens[:, 0], tokens[:, 1]), 1)
    assert pooled_chisquare(pairs, exact_pair_probs(target, prompt)) > 1e-3
    for position in (2, 3):  # later tokens: against plain sampling's own samples
        assert two_sample_pvalue(tokens[:, position], plain_tokens[:, position]) > 1e-3


class ConstantProposer(BaseProposer):
    """Drafts the background token 0 at every position, deterministically."""

    def propose(self, request):
        return Draft.chain([0] * request.max_tokens)


def test_the_chisquare_test_sees_a_lossy_rule(tiny_digits, prompt):
    """LANTERN at a large delta shifts the distribution; the same test must notice."""
    target, _ = tiny_digits
    lantern = LanternVerifier.from_model(target, LanternOptions(delta=0.5, k=8))
    tokens, stat = run(ReferenceEngine(target), prompt, ConstantProposer(), lantern, k=1, new=2)
    pairs = np.zeros((27, 27))
    np.add.at(pairs, (tokens[:, 0], tokens[:, 1]), 1)
    assert pooled_chisquare(pairs, exact_pair_probs(target, prompt)) < 1e-3
    exact, _ = run(ReferenceEngine(target), prompt, ConstantProposer(), "speculative_sampling", k=1, new=2)
    pairs = np.zeros((27, 27))
    np.add.at(pairs, (exact[:, 0], exact[:, 1]), 1)
    assert pooled_chisquare(pairs, exact_pair_probs(target, prompt)) > 1e-3


def test_lantern_delta_zero_generates_the_same_images_as_exact(tiny_digits):
    target, draft = tiny_digits
    engine = ReferenceEngine(target)
    labels = np.arange(10)
    exact = sample_images(engine, labels, DraftModelProposer(draft, seed=4), "speculative_sampling", k=4, seed=4)
    zero = sample_images(engine, labels, DraftModelProposer(draft, seed=4),
                         LanternVerifier.from_model(target, LanternOptions(delta=0.0, k=4)), k=4, seed=4)
    assert np.array_equal(exact.images, zero.images)
    assert exact.stats.accept_lengths == zero.stats.accept_lengths
    relaxed = sample_images(engine, labels, DraftModelProposer(draft, seed=4),
                            LanternVerifier.from_model(target, LanternOptions(delta=0.4, k=4)), k=4, seed=4)
    assert relaxed.stats.acceptance_rate > exact.stats.acceptance_rate
    assert not np.array_equal(relaxed.images, exact.images)


def test_build_setting_names_bad_options(tiny_digits):
    from specplug.methods import OptionsError

    target, draft = tiny_digits
    with pytest.raises(OptionsError, match="delta"):
        build_setting("draft", target, draft, "lantern", {"delta": -0.5})
    with pytest.raises(ValueError, match="use k <= 26"):
        build_setting("draft", target, draft, "lantern", {"k": 27})
    with pytest.raises(ValueError, match="unknown drafter"):
        build_setting("medusa", target, draft)
