"""Per-request and aggregate decoding statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from specplug.counts import AcceptanceCounts

__all__ = ["GenerationResult", "GenerationStats"]


@dataclass
class GenerationStats(AcceptanceCounts):
    """Counters of one request (or a sum of requests, see :meth:`~specplug.counts.AcceptanceCounts.merge`).

    The counts and their ratios are :class:`~specplug.counts.AcceptanceCounts`':

    - ``drafted``: draft nodes sent to the target (after truncation to the budget);
    - ``accepted``: draft tokens kept;
    - ``steps``: target forwards (the prefill included: it verifies the first draft);
    - ``new_tokens``: tokens emitted;
    - ``accept_lengths``: accepted draft tokens per step;
    - ``mat``: mean accepted tokens per target forward, bonus included (``new_tokens / steps``;
      1.0 for plain decoding);
    - ``acceptance_rate``: ``accepted / drafted``.

    Both ratios are 0.0 where the counts leave them undefined (the engine's output is always a
    number). Added here: ``draft_s`` / ``verify_s``, seconds in the proposer vs in the target
    forward plus verifier; ``wall_s`` and ``tokens_per_s`` (``new_tokens / wall_s``).
    """

    draft_s: float = 0.0
    verify_s: float = 0.0
    wall_s: float = 0.0

    @property
    def mat(self) -> float:
        return super().mat or 0.0

    @property
    def acceptance_rate(self) -> float:
        return super().acceptance_rate or 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("accept_lengths")
        data.update(mat=self.mat, acceptance_rate=self.acceptance_rate, tokens_per_s=self.tokens_per_s)
        return data


@dataclass
class GenerationResult:
    """One request's output: the new tokens only (the EOS token included when it ended the request)."""

    token_ids: list[int]
    stats: GenerationStats
    finish_reason: str  # "eos" or "length"
    text: str | None = None
