"""The counts behind MAT and acceptance, defined once for every place that reports them.

Speculative decoding's two quality figures are ratios of four counts:

- ``drafted``: draft tokens (tree nodes) sent to the target for verification;
- ``accepted``: draft tokens kept;
- ``steps``: target forwards, the prefill included (it verifies the first draft and emits the
  first token);
- ``new_tokens``: tokens emitted.

**MAT** (mean accepted tokens per target forward) is ``new_tokens / steps``: every forward emits
its accepted draft tokens plus one bonus token, so plain decoding has MAT 1. The **acceptance
rate** is ``accepted / drafted``. Both are ``None`` where undefined (no forward yet, nothing
drafted), so a report can print "-" and a caller that wants a number picks its own default.

Sums add counts first and divide last (a ratio of sums), so long answers weigh more than short
ones, as they do in wall-clock time. :class:`AcceptanceCounts` is what the reference engine's
:class:`~specplug.engine.GenerationStats`, the benchmark aggregates, the drafter replay of
:mod:`specplug.bench.replay` and plugins' simulations (layerskip's calibration) all count with.
It imports nothing but the standard library, so light modules (the results renderer) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TypeVar

__all__ = ["AcceptanceCounts"]

C = TypeVar("C", bound="AcceptanceCounts")


@dataclass
class AcceptanceCounts:
    """Draft and emission counts of one request or of a sum of requests (see the module docstring).

    Subclasses add their own summable fields (seconds, a cost); :meth:`merge` and ``+`` sum every
    dataclass field, lists by concatenation.
    """

    drafted: int = 0
    accepted: int = 0
    steps: int = 0
    new_tokens: int = 0
    accept_lengths: list[int] = field(default_factory=list)  # accepted draft tokens per step, where recorded

    @classmethod
    def from_vllm(cls: type[C], new_tokens: int, accepted: int, drafted: int = 0) -> C:
        """Counts from vLLM's spec-decode counters and the tokens it emitted: every engine step of a
        request emits its accepted draft tokens plus one, so ``steps = new_tokens - accepted``."""
        return cls(drafted=drafted, accepted=accepted, steps=max(new_tokens - accepted, 0), new_tokens=new_tokens)

    @property
    def mat(self) -> float | None:
        """``new_tokens / steps``; ``None`` before the first forward."""
        return self.new_tokens / self.steps if self.steps else None

    @property
    def acceptance_rate(self) -> float | None:
        """``accepted / drafted``; ``None`` when nothing was drafted."""
        return self.accepted / self.drafted if self.drafted else None

    def __iadd__(self: C, other: AcceptanceCounts) -> C:
        """Add ``other``'s value of every field of ``self`` in place (lists extended)."""
        for f in fields(self):
            value = getattr(other, f.name)
            if isinstance(value, list):
                getattr(self, f.name).extend(value)
            else:
                setattr(self, f.name, getattr(self, f.name) + value)
        return self

    def __add__(self: C, other: AcceptanceCounts) -> C:
        """The sum as a new object of this one's type (see :meth:`__iadd__`)."""
        total = type(self)()
        total += self
        total += other
        return total

    @classmethod
    def merge(cls: type[C], items: Iterable[AcceptanceCounts]) -> C:
        """The sum of ``items`` (an empty sum is all zeros)."""
        total = cls()
        for item in items:
            total += item
        return total
