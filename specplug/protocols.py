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
- :class:`ProposalRequest`: what a proposer sees of one live request in one step (token ids; for
  model drafters also the request's sampling parameters and the target's new hidden states).
- :class:`TargetInfo`: what an engine tells a model drafter about the target once, before the first
  request (``bind_target``): vocabulary, tokenizer, shape, and the model itself for self-drafters.
- :class:`StepFeedback`: what the engine tells a proposer after verification (for methods that learn
  from the target, such as Jacobi or Token Recycling).
- :class:`Proposer`: the drafting contract (``start_request``, ``propose``, ``observe``, ``finish_request``).
- :class:`BatchProposer`: an optional batched entry point (``propose_batch``) for engines that draft
  many requests per step, such as vLLM.
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
    "BatchProposer",
    "Draft",
    "Need",
    "ProposalRequest",
    "Proposer",
    "FINAL_HIDDEN_STATE",
    "SamplingParams",
    "StepFeedback",
    "TargetInfo",
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
    target_hidden_states = "target_hidden_states"
    """The target's hidden states at the layers the proposer lists in its ``hidden_state_layers``
    attribute, for every committed position, handed over in :attr:`ProposalRequest.hidden_states`
    (EAGLE's features, Medusa's last state, EAGLE-3's low/mid/high layers)."""
    target_model = "target_model"
    """The target model object itself in :attr:`TargetInfo.model` (self-drafting: layer skipping runs
    the target's own weights; it never loads a second copy)."""


FINAL_HIDDEN_STATE = -1
"""The layer id of the target's final hidden state after its last norm (what its LM head reads).

Other layer ids ``i`` in ``[0, num_layers)`` name the residual stream *entering* decoder layer ``i``
(``i = 0``: the token embeddings), the same numbering as vLLM's ``eagle_aux_hidden_state_layer_ids``
and as index ``i`` of transformers' ``output_hidden_states``."""


@dataclass(frozen=True)
class Draft:
    """Candidate tokens that follow the root (the last committed token).

    A chain has ``parents is None``: token ``i`` follows token ``i - 1``, token 0 follows the root.
    A tree gives ``parents[i]``, the index of node ``i``'s parent, or ``-1`` when the parent is the
    root; parents always come before their children (``parents[i] < i``).

    Example: the tree ``root -> a -> b`` plus ``root -> c`` is
    ``Draft(token_ids=[a, b, c], parents=[-1, 0, -1])``.

    A node whose id lies outside ``[0, vocab_size)`` is no draft, and neither is anything below it:
    :data:`PADDING` (``-1``) is how vLLM pads drafts it cut, and a proposer's bad id must never be
    accepted. :meth:`in_vocab` says which nodes survive, :meth:`without_invalid` removes the others;
    engines clean every draft so before running the target on it.
    """

    PADDING: ClassVar[int] = -1
    """The padding draft id (vLLM's ``PLACEHOLDER_TOKEN_ID``: the scheduler pads the drafts it cut
    with it): "no draft here", for that node and everything below it."""

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

    @property
    def is_chain(self) -> bool:
        """Whether every node is the child of the one before: a chain, whether or not it was given with
        parents (a verifier for chains takes ``Draft([a, b], parents=[-1, 0])`` as the chain ``[a, b]``)."""
        return self.parents is None or np.array_equal(self.parents, np.arange(len(self), dtype=np.int64) - 1)

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

    def in_vocab(self, vocab_size: int) -> np.ndarray:
        """[num_nodes] bool: the node's id and every ancestor's id lie in ``[0, vocab_size)``.

        Only such nodes can ever be accepted. Without this check numpy's ``p[-1]`` would read the
        last vocabulary entry and accept the padding as if it were token ``V - 1``. A chain stops at
        its first invalid id; in a tree, an invalid node takes its subtree with it.
        """
        ids = self.token_ids
        ok = (ids >= 0) & (ids < vocab_size)
        if ok.all():
            return ok
        if self.parents is not None:
            for node, parent in enumerate(self.parents.tolist()):  # parents come first
                if parent >= 0 and not ok[parent]:
                    ok[node] = False
        else:
            ok[int(np.argmin(ok)) :] = False
        return ok

    def without_invalid(self, vocab_size: int) -> Draft:
        """The draft without the nodes :meth:`in_vocab` rules out (parents re-indexed, q rows kept in
        step); ``self`` when every node is valid. For a chain: the draft cut at its first padding or
        out-of-vocabulary id."""
        keep = self.in_vocab(vocab_size)
        if keep.all():
            return self
        nodes = np.flatnonzero(keep)
        probs = None if self.probs is None else self.probs[nodes.tolist()]
        if self.parents is None:
            return Draft.chain(self.token_ids[nodes], probs)
        new_index = np.cumsum(keep) - 1  # old node -> new node (for kept nodes)
        old_parents = self.parents[nodes]
        parents = np.where(old_parents < 0, -1, new_index[np.maximum(old_parents, 0)])
        return Draft(self.token_ids[nodes], parents, probs)


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposer sees of one live request in one step.

    Hidden states (only for proposers that declare :attr:`Need.target_hidden_states`): the target
    computes the state of a position when it runs that position's token, so at every ``propose`` all
    committed positions but the root have one. ``hidden_states`` holds those the proposer has not
    been handed yet: positions ``hidden_start .. len(token_ids) - 2``, in order, accepted draft nodes
    included; ``hidden_states[j, l]`` is the state of position ``hidden_start + j`` at the ``l``-th
    layer of the proposer's ``hidden_state_layers``. A proposer keeps what it needs of them (the
    engine hands each position over once). ``None`` when there are none (a one-token prompt).
    """

    request_id: str
    token_ids: np.ndarray  # [num_committed] int64: prompt + emitted tokens; token_ids[-1] is the root
    num_prompt_tokens: int
    max_tokens: int  # the most draft nodes allowed this step (k, clipped to the length budget)
    sampling: SamplingParams | None = None  # the request's sampling; drafters that sample follow it and return q
    hidden_states: Any = None  # [num_new, num_layers, hidden] float tensor on the engine's device, or None
    hidden_start: int = 0  # the position of hidden_states[0] in token_ids

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


@dataclass(frozen=True)
class TargetInfo:
    """What an engine tells a model drafter about the target, once, before the first request.

    Engines call ``proposer.bind_target(info)`` on every proposer that defines it (it is optional
    for model-free methods), possibly again with the same target; binding another target must
    rebuild whatever depended on the old one. A drafter checks compatibility here (a draft model
    whose vocabulary or tokenizer differs from the target's is refused with an error naming both).
    """

    vocab_size: int  # the target's output vocabulary (draft ids must lie in [0, vocab_size))
    num_layers: int | None = None  # decoder layers
    hidden_size: int | None = None
    tokenizer: Any = None  # the target's tokenizer where the engine has one
    name_or_path: str | None = None  # where the target was loaded from, for error messages
    model: Any = None  # the engine's own model object (reference engine: a transformers causal LM), for Need.target_model; None where the engine cannot share it


@runtime_checkable
class Proposer(Protocol):
    """A drafting method, engine-free.

    The engine calls ``start_request`` once per request, then each step ``propose`` (and, after
    verification, ``observe``), and ``finish_request`` when the request ends or is aborted.
    A proposer keeps only bounded state per request and drops it on ``finish_request``.

    ``needs`` lists the engine state beyond token ids it wants (see :class:`Need`). An engine that
    cannot provide a need must refuse the method when it starts, not mid-request.

    Model drafters may also define ``bind_target(info: TargetInfo)`` (called before the first
    request) and, with :attr:`Need.target_hidden_states`, a ``hidden_state_layers`` tuple of layer
    ids (see :data:`FINAL_HIDDEN_STATE`). A drafter that samples draws from the request's
    ``sampling`` and returns its draft distribution ``q`` in :attr:`Draft.probs`, so speculative
    sampling stays exact.
    """

    needs: ClassVar[frozenset[Need]]

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None: ...

    def propose(self, request: ProposalRequest) -> Draft: ...

    def observe(self, feedback: StepFeedback) -> None: ...

    def finish_request(self, request_id: str) -> None: ...


@runtime_checkable
class BatchProposer(Protocol):
    """Optional: chain drafts for many requests in one call, on the engine's own token buffer.

    A :class:`Proposer` may also implement this; engines that decode a batch (vLLM's custom_class
    adapter) then make one call per step instead of one :meth:`Proposer.propose` per row, which
    removes the per-row Python (a request object and a draft object per row). Everything else about
    the proposer stays: ``start_request`` / ``finish_request`` are still called, and engines that
    verify trees keep calling ``propose``.

    ``propose_batch(token_ids, lengths, max_tokens, out, request_ids, num_prompt_tokens) -> counts``:

    - ``token_ids``: ``[rows, max_len]`` integer array (vLLM's ``token_ids_cpu``, not copied); row
      ``i``'s committed tokens are ``token_ids[i, :lengths[i]]``.
    - ``lengths``: ``[rows]`` committed tokens per row.
    - ``max_tokens``: ``[rows]`` the most draft tokens for each row; ``<= 0`` means skip the row
      (not live, or no budget left): its tokens must not be read and its state not touched.
    - ``out``: ``[rows, k]`` int32, filled with ``-1`` by the caller, ``max_tokens <= k``; row
      ``i``'s draft goes into ``out[i, :counts[i]]``; cells past ``counts[i]`` stay ``-1``.
    - ``request_ids``: the request id of every row (``None`` for skipped rows), or ``None`` when
      ``stateless`` is true: a stateless proposer must not need them, and the engine may skip
      tracking which request sits in which row.
    - ``num_prompt_tokens``: ``[rows]`` prompt length per row, or ``None`` (with ``request_ids=None``).
    - returns ``counts``: ``[rows]`` int32, the draft length of every row (0 for skipped rows).

    The contract is equivalence: for every live row the batch call writes exactly the first chain
    of the draft that ``propose(ProposalRequest(request_ids[i], token_ids[i, :lengths[i]],
    num_prompt_tokens[i], max_tokens[i]))`` would return, with the same effect on the proposer's
    state, rows taken in order (``specplug.testing.batch.assert_batch_matches_propose`` checks this).
    """

    stateless: ClassVar[bool]
    """True when drafts depend on the token arrays only (no per-request state, no lifecycle needed)."""

    def propose_batch(
        self,
        token_ids: np.ndarray,  # [rows, max_len] int
        lengths: np.ndarray,  # [rows] int
        max_tokens: np.ndarray,  # [rows] int, <= 0 = skip the row
        out: np.ndarray,  # [rows, k] int32, filled with -1
        request_ids: list[str | None] | None = None,  # [rows], None when stateless
        num_prompt_tokens: np.ndarray | None = None,  # [rows] int
    ) -> np.ndarray: ...  # [rows] int32 draft lengths


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
