"""The vertical and horizontal cascades of CS Drafting (Chen et al., arXiv 2312.11462).

**Vertical cascade.** Every neural level decodes its tokens by speculative decoding with the level
below it as *its* drafter: the lower level proposes up to ``inner_k`` tokens, the level runs one
forward over them, keeps the longest prefix equal to its own argmax and adds its own next token.
The bottom level is the statistical Max-Gram model (:mod:`specplug_cs_drafting.maxgram`), which costs
no forward. Because that inner verification is exact, a level's tokens are exactly its own greedy
chain: the cascade only makes the drafters cheaper, never different.

**Horizontal cascade.** Later draft positions are less likely to be accepted, so cheaper levels draft
them: the first ``lengths[0]`` positions come from the top drafter (itself vertically cascaded), the
next ``lengths[1]`` from the level below, and so on down to Max-Gram.

Drafts are greedy (deterministic, no ``q``), as the paper's experiments; the target's verifier treats
them as one-hot drafts, so output stays lossless at any temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from specplug_cs_drafting.maxgram import maxgram_continue

__all__ = ["MaxGramLevel", "ModelLevel", "InnerStep"]


@dataclass(frozen=True)
class InnerStep:
    """One inner step of a vertical cascade: what the lower level fed the upper one, what it kept."""

    proposed: tuple[int, ...]
    kept: int  # how many of ``proposed`` the upper level accepted
    own: int  # the upper level's own token after them


class MaxGramLevel:
    """The statistical bottom level."""

    def __init__(self, max_ngram: int) -> None:
        self.max_ngram = max_ngram
        self.forwards = 0  # never runs a model

    def generate(self, context: Sequence[int], n: int) -> list[int]:
        return maxgram_continue(context, n, self.max_ngram)


@dataclass
class ModelLevel:
    """A neural drafter whose tokens are decoded with ``lower`` as its own drafter."""

    lm: Any  # specplug.kit.target.TargetModel over the drafter
    lower: Any  # ModelLevel or MaxGramLevel
    inner_k: int
    tokens: list[int] = field(default_factory=list)  # what the KV cache holds
    forwards: int = 0  # this level's forwards (for the cost split and the tests)
    trace: list[InnerStep] = field(default_factory=list)  # inner steps of the last generate call

    def generate(self, context: Sequence[int], n: int) -> list[int]:
        """``n`` tokens of this level's greedy chain after ``context``."""
        context = [int(t) for t in context]
        out: list[int] = []
        self.trace = []
        while len(out) < n:
            # the last own token of a step is never verified by this level, so propose at most n - len(out) - 1
            want = min(self.inner_k, n - len(out) - 1)
            proposed = self.lower.generate(context + out, want) if want > 0 else []
            logits = self._score(context + out, proposed)  # [len(proposed) + 1, V]
            choice = logits.argmax(-1).tolist()
            kept = 0
            while kept < len(proposed) and proposed[kept] == choice[kept]:
                kept += 1
            self._drop_after(len(context) + len(out) + kept)  # cache: context, out and the kept proposals
            self.trace.append(InnerStep(tuple(proposed), kept, int(choice[kept])))
            out += proposed[:kept] + [int(choice[kept])]
        return out[:n]

    def reset(self) -> None:
        self.lm.reset()
        self.tokens = []

    def _score(self, committed: list[int], proposed: list[int]) -> torch.Tensor:
        """Logits after the last committed token and after each proposed token, in one forward."""
        same = 0
        limit = min(len(self.tokens), len(committed) - 1)  # the root is always fed
        while same < limit and self.tokens[same] == committed[same]:
            same += 1
        if same < self.lm.cache_len:
            self.lm.rollback(same)
        del self.tokens[same:]
        feed = committed[same:] + proposed
        logits = self.lm.forward(feed, logits_to_keep=len(proposed) + 1)
        self.tokens += feed
        self.forwards += 1
        return logits

    def _drop_after(self, keep: int) -> None:
        if keep < self.lm.cache_len:
            self.lm.rollback(keep)
        del self.tokens[keep:]
