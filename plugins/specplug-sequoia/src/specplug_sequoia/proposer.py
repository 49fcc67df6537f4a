"""Sequoia (Chen, May, Svirschevski, Huang, Ryabinin, Jia, Chen; arXiv 2402.12374) in specplug's
reference engine.

1. **Positional acceptance.** How often the target accepts the draft's ``i``-th candidate at a
   position once the first ``i - 1`` were rejected, measured once per target, drafter and
   temperature (:func:`specplug.kit.tree_drafting.measure_profile`: star drafts verified in the
   reference engine on held-out Spec-Bench prompts) and cached under specplug's cache with the
   target's fingerprint; a profile given with ``profile=FILE`` that was measured for another target
   is refused.
2. **The tree.** Sequoia's dynamic program (:func:`specplug.kit.trees.sequoia_shape`) gives the shape
   of at most ``budget`` nodes with the most expected accepted tokens under that vector. The shape
   is fixed; each step fills it with the drafter's candidates (one drafter call per depth).
3. **Hardware-aware budget** (``hardware_aware=true``): the budget that maximises modelled speedup
   from the verify cost per tree size measured on this machine at bind time (or ``cost_curve``) and
   the draft's time per depth (:mod:`specplug_sequoia.optimizer`).
4. **Temperature > 0** with ``draw=without_replacement``: the children of a node are sampled without
   replacement from the draft's distribution, and the ``sequoia_swr`` verifier accepts them exactly
   (:mod:`specplug_sequoia.verifier`). With the default ``draw=top_k`` the children are the draft's
   top-k tokens, which every lossless tree verifier accepts exactly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field

from specplug.kit.tree_drafting import TreeProposer, TreeSourceOptions
from specplug.protocols import ProposalRequest, SamplingParams

__all__ = ["SequoiaOptions", "SequoiaProposer"]


class SequoiaOptions(TreeSourceOptions):
    hardware_aware: bool = Field(False, description="pick the node budget that maximises modelled speedup from the verify "
                                 "cost per tree size (measured here at bind time, or cost_curve); budget is then the largest allowed")
    cost_curve: str | None = Field(None, description="verify cost per forward as TOKENS:MS pairs (e.g. '1:2.9,8:3.7,64:3.9'), "
                                   "instead of measuring this machine's")
    max_depth: int | None = Field(None, ge=1, description="deepest tree the dynamic program may build (None: the budget)")
    profile: str | None = Field(None, description="a positional acceptance profile (JSON) to use instead of measuring one; "
                                "it must have been measured for this target")
    profile_width: int = Field(8, ge=1, le=64, description="candidates per position the profile measures (the widest node)")
    profile_prompts: int = Field(4, ge=1, description="held-out Spec-Bench prompts the profile is measured on")
    profile_tokens: int = Field(48, ge=4, description="new tokens per profile prompt")
    draw: Literal["top_k", "without_replacement"] = Field(
        "top_k", description="children of a node: the draft's top-k, or (temperature > 0) sampled without replacement, "
        "which needs the sequoia_swr verifier")
    seed: int = Field(0, description="seed of the draws without replacement")


#: plans shared by every proposer of one process: (target object id, options, temperature) -> plan.
#: The CLI and the benchmarks warm up with one proposer and time another; the plan (a profile, a
#: cost measurement) is made in the warm-up and not paid again inside a timed run.
_PLANS: dict[tuple, dict] = {}


def profile_dir() -> Path:
    from specplug.models import cache_dir

    return cache_dir() / "profiles"


class SequoiaProposer(TreeProposer):
    """See the module docstring."""

    tree_method = "sequoia"

    def __init__(self, options: SequoiaOptions | None = None) -> None:
        super().__init__(options or SequoiaOptions(draft_layers="0-3"))
        self._generator = None

    # -- the plan: profile, budget, shape --------------------------------------------------------
    def plan(self, sampling: SamplingParams | None) -> dict:
        """The profile and budget for this temperature (measured once, then cached)."""
        sampling = sampling or SamplingParams()
        key = (id(self.info.model) if self.info else None, self.options.model_dump_json(), float(sampling.temperature))
        if key not in _PLANS:
            _PLANS[key] = self._make_plan(sampling)
        return _PLANS[key]

    def _make_plan(self, sampling: SamplingParams) -> dict:
        from specplug.kit.tree_drafting import target_fingerprint

        if self.info is None or self.info.model is None:
            raise RuntimeError("sequoia: bind_target was not called; the engine must bind a target first")
        opts = self.options
        fingerprint = target_fingerprint(self.info.model)
        profile, draft_call_s = self._profile(fingerprint, sampling)
        budget = opts.budget
        choice = None
        if opts.hardware_aware:
            choice = self._choose_budget(profile.acceptance, draft_call_s)
            budget = choice.budget
        return {"profile": profile, "draft_call_s": draft_call_s, "budget": budget, "choice": choice, "shapes": {},
                "verify_costs": getattr(self, "_costs", None)}

    def _profile(self, fingerprint: str, sampling: SamplingParams):
        import json

        from specplug.kit.trees import AcceptanceProfile

        opts = self.options
        if opts.profile:
            profile = AcceptanceProfile.load(opts.profile).check(fingerprint)
            return profile, 0.0
        draw = opts.draw if not sampling.greedy else "top_k"
        # "median": the draft time stored beside the profile is the median call (profiles stored before hold a mean)
        name = hashlib.sha256(f"median|{fingerprint}|{self.source.label}|{sampling}|{opts.profile_width}|{draw}|"
                              f"{opts.profile_prompts}|{opts.profile_tokens}".encode()).hexdigest()[:24]
        path = profile_dir() / f"sequoia-{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            cached = AcceptanceProfile.load(path).check(fingerprint)
            if cached.samples > 0:  # an empty one (every step cut by the length budget) is measured again
                return cached, float(data.get("draft_call_s", 0.0))
        run = self._measure(sampling)
        run.profile.save(path)
        data = json.loads(path.read_text())
        data["draft_call_s"] = run.draft_call_s
        path.write_text(json.dumps(data, indent=1))
        return run.profile, run.draft_call_s

    def _measure(self, sampling: SamplingParams):
        import numpy as np

        from specplug.kit.tree_drafting import default_profile_prompts, measure_profile

        info = self.info
        prompts = default_profile_prompts(info.tokenizer, self.options.profile_prompts)
        if prompts is None:  # no tokenizer (a tiny test model): random prompts of the target's ids
            rng = np.random.default_rng(0)
            prompts = [rng.integers(0, info.vocab_size, size=12).tolist() for _ in range(self.options.profile_prompts)]
        verifier = None
        if not sampling.greedy and self.options.draw == "without_replacement":
            from specplug_sequoia.verifier import SequoiaVerifier

            verifier = SequoiaVerifier()
        return measure_profile(self, info.model, prompts, self.options.profile_width, self.options.profile_tokens,
                               sampling, info.tokenizer, verifier=verifier)

    def _choose_budget(self, acceptance, draft_call_s: float):
        from specplug.kit.tree_drafting import measure_verify_costs

        from specplug_sequoia.optimizer import CANDIDATE_BUDGETS, cost_function, parse_cost_curve, pick_budget

        opts = self.options
        if opts.cost_curve:
            curve = parse_cost_curve(opts.cost_curve)
        else:
            sizes = [0] + [c for c in CANDIDATE_BUDGETS if c <= opts.budget]
            curve = measure_verify_costs(self.info.model, sizes)
        self._costs = dict(curve)
        return pick_budget(acceptance, cost_function(curve), draft_call_s, opts.budget, opts.max_depth)

    def shape(self, sampling: SamplingParams | None, budget: int):
        from specplug.kit.trees import sequoia_shape

        plan = self.plan(sampling)
        budget = min(budget, plan["budget"])
        if budget not in plan["shapes"]:
            plan["shapes"][budget] = sequoia_shape(plan["profile"].acceptance, budget, self.options.max_depth)
        return plan["shapes"][budget]

    # -- drafting --------------------------------------------------------------------------------
    def wrap_drafter(self, drafter, request: ProposalRequest):
        sampling = request.sampling
        if self.options.draw == "without_replacement" and sampling is not None and not sampling.greedy:
            import torch

            from specplug.kit.tree_drafting import SampledWithoutReplacement

            if self._generator is None:
                self._generator = torch.Generator().manual_seed(self.options.seed)
            return SampledWithoutReplacement(drafter, self._generator)
        return drafter

    def build_tree(self, drafter, budget: int, request: ProposalRequest):
        from specplug.kit.tree_drafting import SampledWithoutReplacement
        from specplug.kit.trees import instantiate_shape

        shape = self.shape(request.sampling, budget)
        return instantiate_shape(drafter, shape, with_dists=isinstance(drafter, SampledWithoutReplacement))
