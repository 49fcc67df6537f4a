"""Per-request and aggregate decoding statistics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

__all__ = ["GenerationResult", "GenerationStats"]


@dataclass
class GenerationStats:
    """Counters of one request (or a sum of requests, see :meth:`merge`).

    - ``drafted``: draft nodes sent to the target (after truncation to the budget);
    - ``accepted``: draft tokens kept;
    - ``steps``: target forwards (the prefill included: it verifies the first draft);
    - ``new_tokens``: tokens emitted;
    - ``mat``: mean accepted tokens per target forward, bonus included (``new_tokens / steps``;
      1.0 for plain decoding);
    - ``acceptance_rate``: ``accepted / drafted`` (0 when nothing was drafted);
    - ``draft_s`` / ``verify_s``: seconds in the proposer vs in the target forward plus verifier;
    - ``wall_s`` and ``tokens_per_s`` (``new_tokens / wall_s``).
    """

    drafted: int = 0
    accepted: int = 0
    steps: int = 0
    new_tokens: int = 0
    draft_s: float = 0.0
    verify_s: float = 0.0
    wall_s: float = 0.0
    accept_lengths: list[int] = field(default_factory=list)  # accepted draft tokens per step

    @property
    def mat(self) -> float:
        return self.new_tokens / self.steps if self.steps else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @classmethod
    def merge(cls, items: Iterable[GenerationStats]) -> GenerationStats:
        total = cls()
        for s in items:
            total.drafted += s.drafted
            total.accepted += s.accepted
            total.steps += s.steps
            total.new_tokens += s.new_tokens
            total.draft_s += s.draft_s
            total.verify_s += s.verify_s
            total.wall_s += s.wall_s
            total.accept_lengths.extend(s.accept_lengths)
        return total

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
