"""Engine-free contracts between drafting methods, verifiers and engines.

Terms, used the same way everywhere in specplug:

- **committed tokens**: the request's prompt plus every token already emitted. The last committed
  token is the *root* of the next draft.
- **draft**: tokens a proposer guesses will follow the root, a chain or a tree.
- **accepted tokens**: draft tokens the verifier keeps, a path from the root.
- **bonus token**: the token the verifier adds after the accepted path, taken from the target's own
  distribution at that point. Every step therefore emits ``accepted + 1`` tokens, and
  MAT (mean accepted tokens per target forward) counts them.

Classes:

- :class:`Draft`: a chain or a tree of token ids, with optional draft probabilities.
- :class:`ProposalRequest`: what a proposer sees of one live request in one step.
- :class:`StepFeedback`: what the engine tells a proposer after verification (for methods that learn
  from the target, such as Jacobi or Token Recycling).
- :class:`Proposer`: the drafting contract (``start_request``, ``propose``, ``observe``, ``finish_request``).
- :class:`VerifyResult`, :class:`Verifier`: the refinement contract.
- :class:`SamplingParams`.

This module imports neither vllm nor transformers, nor torch: proposers run inside any engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # torch is only needed by verifiers and engines
    import torch

__all__ = [
    "Draft",
    "Need",
    "ProposalRequest",
    "Proposer",
    "SamplingParams",
    "StepFeedback",
    "Verifier",
    "VerifyResult",
]


class Need(StrEnum):
    """Engine state a proposer may ask for beyond token ids."""

    target_topk = "target_topk"
    """The target's top-k token ids at every verified position (Token Recycling)."""
    target_predictions = "target_predictions"
    """The target's greedy token at every draft position, including rejected ones (Jacobi)."""
    target_probs = "target_probs"
    """The target's distribution (after temperature, top-k, top-p) at every draft position (SJD)."""
    request_lifecycle = "request_lifecycle"
    """Real request ids with start and finish events (cross-request caches such as SuffixDecoding)."""


@dataclass(frozen=True)
class Draft:
    """Candidate tokens that follow the root (the last committed token).

    A chain has ``parents is None``: token ``i`` follows token ``i - 1``, token 0 follows the root.
    A tree gives ``parents[i]``, the index of node ``i``'s parent, or ``-1`` when the parent is the
    root; parents always come before their children (``parents[i] < i``).

    Example: the tree ``root -> a -> b`` plus ``root -> c`` is
    ``Draft(token_ids=[a, b, c], parents=[-1, 0, -1])``.
    """

    token_ids: np.ndarray  # [num_nodes] int64
    parents: np.ndarray | None = None  # [num_nodes] int64, -1 = root; None = chain
    probs: Any = None  # [num_nodes, vocab] draft distribution q per node (numpy or torch), or None = deterministic

    def __post_init__(self) -> None:
        ids = np.asarray(self.token_ids, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "token_ids", ids)
        if self.parents is not None:
            parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
            if parents.shape != ids.shape:
                raise ValueError(f"draft has {ids.size} tokens but {parents.size} parents")
            if ids.size and np.any(parents >= np.arange(ids.size)):
                raise ValueError("every tree node's parent must come before it (parents[i] < i)")
            if ids.size and np.any(parents < -1):
                raise ValueError("parent indices must be -1 (the root) or a node index")
            object.__setattr__(self, "parents", parents)

    @classmethod
    def empty(cls) -> Draft:
        return cls(np.zeros(0, dtype=np.int64))

    @classmethod
    def chain(cls, token_ids, probs=None) -> Draft:
        return cls(np.asarray(token_ids, dtype=np.int64), None, probs)

    def __len__(self) -> int:
        return int(self.token_ids.size)

    @property
    def is_tree(self) -> bool:
        return self.parents is not None

    def parent_array(self) -> np.ndarray:
        """Parents for chains and trees alike (a chain's parents are ``[-1, 0, 1, ...]``)."""
        if self.parents is not None:
            return self.parents
        return np.arange(len(self), dtype=np.int64) - 1

    def depths(self) -> np.ndarray:
        """Depth of every node, 1 for children of the root."""
        parents = self.parent_array()
        depth = np.zeros(len(self), dtype=np.int64)
        for i, p in enumerate(parents):
            depth[i] = 1 if p < 0 else depth[p] + 1
        return depth

    def path_to(self, node: int) -> list[int]:
        """Node indices from the root's first child down to ``node`` inclusive."""
        parents = self.parent_array()
        path = []
        while node >= 0:
            path.append(int(node))
            node = int(parents[node])
        return path[::-1]

    def truncated(self, limit: int) -> Draft:
        """The draft cut to ``limit`` nodes (for a tree: the first ``limit`` nodes, which stay closed
        under parents because parents come first)."""
        if len(self) <= limit:
            return self
        probs = None if self.probs is None else self.probs[:limit]
        parents = None if self.parents is None else self.parents[:limit]
        return Draft(self.token_ids[:limit], parents, probs)


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposer sees of one live request in one step."""

    request_id: str
    token_ids: np.ndarray  # [num_committed] int64: prompt + emitted tokens; token_ids[-1] is the root
    num_prompt_tokens: int
    max_tokens: int  # the most draft nodes allowed this step (k, clipped to the length budget)

    @property
    def prompt_ids(self) -> np.ndarray:
        return self.token_ids[: self.num_prompt_tokens]


@dataclass
class StepFeedback:
    """What the engine reports to a proposer after verifying its draft."""

    request_id: str
    draft: Draft
    accepted_nodes: list[int]  # draft node indices along the accepted path, root-first
    emitted: list[int]  # tokens appended this step: accepted tokens + the bonus token
    target_predictions: np.ndarray | None = None  # [num_nodes + 1] target argmax at root and each node
    target_topk: np.ndarray | None = None  # [num_nodes + 1, k] target top-k ids at root and each node
    target_probs: np.ndarray | None = None  # [num_nodes + 1, V] float64 target distribution at root and each node


@runtime_checkable
class Proposer(Protocol):
    """A drafting method, engine-free.

    The engine calls ``start_request`` once per request, then each step ``propose`` (and, after
    verification, ``observe``), and ``finish_request`` when the request ends or is aborted.
    A proposer keeps only bounded state per request and drops it on ``finish_request``.

    ``needs`` lists the engine state beyond token ids it wants (see :class:`Need`). An engine that
    cannot provide a need must refuse the method when it starts, not mid-request.
    """

    needs: ClassVar[frozenset[Need]]

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None: ...

    def propose(self, request: ProposalRequest) -> Draft: ...

    def observe(self, feedback: StepFeedback) -> None: ...

    def finish_request(self, request_id: str) -> None: ...


class BaseProposer:
    """Convenience base with no-op lifecycle methods; subclasses implement ``propose``."""

    needs: ClassVar[frozenset[Need]] = frozenset()

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        return None

    def propose(self, request: ProposalRequest) -> Draft:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, feedback: StepFeedback) -> None:
        return None

    def finish_request(self, request_id: str) -> None:
        return None


@dataclass(frozen=True)
class SamplingParams:
    """How the target's distribution is turned into tokens. ``temperature == 0`` means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class VerifyResult:
    """The outcome of verifying one draft."""

    accepted_nodes: list[int]  # draft node indices of the accepted path, root-first
    tokens: list[int] = field(default_factory=list)  # accepted tokens followed by the bonus token

    @property
    def num_accepted(self) -> int:
        return len(self.accepted_nodes)


@runtime_checkable
class Verifier(Protocol):
    """A refinement rule.

    ``verify`` gets the target's logits at the root and at every draft node,
    ``target_logits[0]`` after the root and ``target_logits[i + 1]`` after node ``i`` (each row
    computed with the node's ancestors as context), and returns the accepted path plus the bonus
    token. A lossless verifier's output is distributed exactly as plain decoding's.
    """

    lossless: ClassVar[bool]

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, vocab]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult: ...
