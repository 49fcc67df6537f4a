"""``kangaroo`` for Whisper: the target's first decoder layers plus a trained exit adapter draft for it.

Kangaroo's two early exits (Liu et al., arXiv 2404.18911):

1. **layer early exit**: the draft is the target's own first ``l`` decoder layers (shared weights and
   encoder output; its own self-attention cache) followed by the trained adapter and the target's
   tied output projection over a reduced vocabulary (:mod:`specplug_speech.early_exit`);
2. **draft early exit**: drafting stops at the first position where the draft's top-1 probability
   is below ``stop_below`` (the paper's threshold eta), so the target verifies fewer rows that it
   would reject anyway (on a CPU every verified row pays the 51,864-row output projection).

Verification is the whole target over the chain, as for every drafter (lossless: the transcript is
exactly plain greedy decoding's; at temperature > 0 the draft samples and records ``q``).

This module imports torch only when a draft is bound.
"""

from __future__ import annotations

from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import TargetInfo
from specplug_speech.proposer import DistilWhisperProposer

__all__ = ["KangarooOptions", "KangarooProposer"]


class KangarooOptions(MethodOptions):
    """Options of ``kangaroo`` (Whisper targets)."""

    draft: str | None = Field(
        None, description="The trained exit folder ('specplug speech train-exit' prints it); default: the one trained for this "
        "target at exit_layer under $SPECPLUG_CACHE/drafts."
    )
    exit_layer: int = Field(2, ge=1, le=31, description="Which default exit to use when 'draft' is not given: after this many decoder layers.")
    stop_below: float = Field(0.6, ge=0.0, le=1.0, description="Draft early exit: stop drafting before a token whose draft top-1 "
                              "probability is below this (Kangaroo's eta; 0: never stop early).")
    seed: int = Field(0, description="Seed of the draft's sampling at temperature > 0.")


class KangarooProposer(DistilWhisperProposer):
    """Drafts a chain with the target's first layers and a trained exit adapter, stopping when unsure."""

    def bind_target(self, target: TargetInfo) -> None:
        if self._bound_to == id(target.model) and self.draft is not None:
            return
        from specplug_speech.early_exit import default_exit_dir, load_early_exit_draft

        model = target.model
        if model is None or not getattr(model.config, "is_encoder_decoder", False):
            raise ValueError("kangaroo is implemented here for Whisper targets (encoder-decoder models): use --model whisper-tiny.en; "
                             "for text models use draft_verify or swift (layer skipping)")
        folder = self.options.draft or default_exit_dir(model, self.options.exit_layer)
        self.draft = load_early_exit_draft(folder, model)
        self._caches.clear()
        self._bound_to = id(model)

    def _new_cache(self, default):
        from specplug_speech.early_exit import EarlyExitDraftCache

        return EarlyExitDraftCache(self.draft)
