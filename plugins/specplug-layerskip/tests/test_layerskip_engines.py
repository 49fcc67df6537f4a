"""draft_verify and swift in the reference engine: greedy output identical to plain decoding.

The tests come from :class:`specplug.testing.engines.MethodEngineConformance`. Its tiny model
(``tiny_llama(vocab_size=128, seed=1)``, 2 layers) gets a profile calibrated in the test (seconds);
the SmolLM2 test calibrates a quick profile (2 prompts, 3 evaluations) into a temporary folder. The
confidence threshold is set to 0 for the tiny random model, whose calibrated threshold may stop
every draft (a random model is not worth drafting for). vLLM has no layer-skip method and its
custom_class path cannot run the target's layers (specplug's adapter refuses methods that need
``target_model``), so the two vLLM tests are not run for these methods.
"""

from __future__ import annotations

import pytest

from specplug.registry import get_registry
from specplug.testing.engines import MethodEngineConformance

NO_VLLM = "vLLM has no layer-skip method; custom_class cannot run the target's layers (see the card)"


class _LayerSkipConformance(MethodEngineConformance):
    profile_path: str | None = None

    @pytest.fixture(autouse=True)
    def _profile(self, request, tmp_path_factory, make_tiny_profile):
        from specplug.testing import tiny_llama

        name = request.node.name
        if "vllm" in name:
            return
        if "smollm2" in name:
            from specplug_layerskip.calibrate import calibrate
            from specplug_layerskip.profile import save_profile

            from specplug.models import load_model

            model, tokenizer = load_model("smollm2-135m")
            profile = calibrate(model, tokenizer, self.method, "smollm2-135m", num_prompts=2, new_tokens=16, evaluations=3)
            self.profile_path = str(save_profile(profile, tmp_path_factory.mktemp("smollm2") / f"{self.method}.json"))
            self.threshold = None
        else:  # the conformance test's own tiny model
            model = tiny_llama(vocab_size=128, seed=1)
            self.profile_path = str(make_tiny_profile(model, self.method, tmp_path_factory.mktemp("tiny") / f"{self.method}.json"))
            self.threshold = 0.0

    def build(self):
        options = dict(self.options, profile=self.profile_path)
        if self.threshold is not None:
            options["threshold"] = self.threshold
        return get_registry().method(self.method).build(options)

    @pytest.mark.skip(reason=NO_VLLM)
    def test_vllm_greedy_lossless_on_a_tiny_model(self, tmp_path):
        pass

    @pytest.mark.skip(reason=NO_VLLM)
    def test_vllm_greedy_lossless_on_smollm2(self, tmp_path):
        pass


class TestDraftVerifyInEngines(_LayerSkipConformance):
    method = "draft_verify"


class TestSwiftInEngines(_LayerSkipConformance):
    method = "swift"
    smollm2_verifiers = ("tree_verification", "speculative_sampling")


class TestSwiftChainsReducedVocabInEngines(_LayerSkipConformance):
    method = "swift"
    options = {"tree": False, "vocab_size": 16}
