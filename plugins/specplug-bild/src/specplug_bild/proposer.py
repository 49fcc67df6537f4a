"""BiLD's small model: decodes until its confidence falls below the fallback threshold.

The small model is an independent draft built by id from the registry (``sps`` from specplug-draft;
this plugin never imports it): the same derived SmolLM2 drafts, KV cache per request and tokenizer
check. BiLD's fallback policy is exactly sps's confidence stop (``stop_below``): the draft ends
before the first position whose largest small-model probability is below ``fallback``, and the large
model's verification forward produces that token. The rollback policy is the ``bild`` verifier
(:mod:`specplug_bild.verifier`), which the engine must be given (``--verifier bild``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback, TargetInfo

from specplug_bild.policies import BildOptions

__all__ = ["BildProposer", "small_model"]


def small_model(options: BildOptions) -> Any:
    """The ``sps`` proposer that plays BiLD's small model, with the fallback threshold as its stop."""
    from specplug.registry import NotRunnableError, UnknownIdError, get_registry

    source = {"model": options.model} if options.model is not None else {"layers": options.layers}
    try:
        spec = get_registry().method("sps")
    except (NotRunnableError, UnknownIdError) as err:
        raise RuntimeError(
            "bild's small model is specplug-draft's 'sps' drafter, which is not installed: pip install specplug-draft"
        ) from err
    return spec.build({**source, "stop_below": options.fallback, "num_draft_tokens": options.max_small_tokens})


class BildProposer(BaseProposer):
    """The small model's side of BiLD (the large model's side is the ``bild`` verifier)."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: BildOptions) -> None:
        self.options = options
        self.small = small_model(options)

    def bind_target(self, target: TargetInfo) -> None:
        self.small.bind_target(target)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self.small.start_request(request_id, prompt_ids)

    def propose(self, request: ProposalRequest) -> Draft:
        return self.small.propose(request)

    def observe(self, feedback: StepFeedback) -> None:
        self.small.observe(feedback)

    def finish_request(self, request_id: str) -> None:
        self.small.finish_request(request_id)
