"""LANTERN (Jang et al., ICLR 2025, arXiv 2410.03355): relaxed acceptance with latent proximity. Lossy.

Image models spread their next-token probability over many tokens that decode to nearly the same
picture, so exact speculative sampling rejects most drafts. LANTERN lets a drafted token ``x`` borrow
the probability of tokens *close to it in latent space*:

- **latent neighbours** ``A_k(x)``: the ``k`` tokens nearest to ``x`` (the token itself excluded), by
  cosine similarity (or Euclidean distance) of the target model's own input token embeddings
  (:func:`latent_neighbours`);
- **relaxed target** ``p~_x`` (:func:`relaxed_target`): take the longest prefix ``B`` of ``A_k(x)``, in
  order of proximity, whose total target probability is at most ``delta``, and move that mass onto
  ``x``: ``p~_x(x) = p(x) + p(B)``, ``p~_x(B) = 0``, ``p~_x = p`` elsewhere. By construction
  ``TV(p, p~_x) = p(B) <= delta`` for every ``x`` (the paper's bound);
- **acceptance**: speculative sampling against ``p~_x`` in place of ``p``: accept ``x`` with
  probability ``min(1, p~_x(x) / q(x))``, else draw from ``norm(max(0, p~_x - q))``.

``delta = 0`` moves no mass, so the rule *is* exact speculative sampling (same random numbers, same
tokens: tested). At temperature 0 the target is one-hot and, for ``delta < 1``, the rule is greedy match.

What the bound covers: each drafted token is checked against a distribution within ``delta`` of
``p``. For a deterministic draft (``q`` one-hot: n-gram, Jacobi, greedy drafters) the token emitted
at that position is distributed exactly as ``p~_x``, so it is within ``delta`` of ``p``. For a sampled
draft the emitted token mixes the ``p~_x`` of every ``x`` the drafter might propose and can be
further than ``delta`` from ``p`` (``tests/test_lantern.py`` has a three-token example); the loss is
then measured, not bounded (``docs/results/image.md``).

Trees are verified like :class:`specplug.verify.SpeculativeSamplingVerifier` (multi-branch), with
each child checked against the relaxed form of the current (residual) distribution.

This module imports numpy only; torch is imported when :meth:`LanternVerifier.verify` first runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions

if TYPE_CHECKING:
    import torch

    from specplug.protocols import Draft, SamplingParams, VerifyResult

__all__ = ["LanternOptions", "LanternVerifier", "latent_neighbours", "relaxed_target"]


class LanternOptions(MethodOptions):
    """Options of the ``lantern`` verifier."""

    delta: float = Field(
        0.1, ge=0, le=1,
        description="The most target probability moved onto a drafted token from its neighbours (TV budget per position).",
    )
    k: int = Field(8, ge=1, description="Latent neighbours per token that may lend their probability (the token excluded).")
    metric: Literal["cosine", "euclidean"] = Field("cosine", description="Proximity of token embeddings.")
    model: str | None = Field(
        None,
        description="The target (a --model value or HF folder) whose input token embeddings define proximity; "
        "not needed with LanternVerifier.from_model.",
    )


def latent_neighbours(embeddings: np.ndarray, k: int, metric: str = "cosine", block: int | None = None) -> np.ndarray:
    """``[V, k]`` int64: row ``x`` lists the ``k`` tokens nearest to ``x`` (nearest first, ``x`` excluded).

    ``embeddings`` is ``[V, d]`` (the target's input embedding matrix). Ties keep token order.
    ``block``: rows of the distance matrix computed at a time (default: about 256 MiB of them).
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"token embeddings must be [vocab, dim], got shape {emb.shape}")
    vocab = emb.shape[0]
    if k > vocab - 1:
        raise ValueError(
            f"lantern option k={k} asks for more latent neighbours than the vocabulary has: {vocab} tokens, "
            f"so at most {vocab - 1} neighbours each; use k <= {vocab - 1}"
        )
    if metric == "cosine":
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

        def distances(rows: slice) -> np.ndarray:
            return -(unit[rows] @ unit.T)  # [rows, V]
    elif metric == "euclidean":
        sq = (emb**2).sum(1)

        def distances(rows: slice) -> np.ndarray:
            return sq[rows, None] + sq[None, :] - 2 * emb[rows] @ emb.T  # [rows, V]
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    # Row blocks keep memory at [block, V] (SmolLM2's whole [V, V] matrix would be 18 GiB in float64).
    # Each row keeps the tokens at most as far as its k-th nearest, then a stable sort among those:
    # the same neighbours, in the same order, as a stable argsort of the whole row.
    out = np.empty((vocab, k), dtype=np.int64)
    block = block or max(1, min(vocab, (1 << 25) // max(vocab, 1)))  # about 256 MiB of float64 per block
    for start in range(0, vocab, block):
        rows = slice(start, min(vocab, start + block))
        distance = distances(rows)
        distance[np.arange(distance.shape[0]), np.arange(rows.start, rows.stop)] = np.inf  # not its own neighbour
        kth = np.partition(distance, k - 1, axis=1)[:, k - 1]  # [rows]
        for i, row in enumerate(distance):
            near = np.flatnonzero(row <= kth[i])
            out[rows.start + i] = near[np.argsort(row[near], kind="stable")][:k]
    return out


def relaxed_target(p: np.ndarray, token: int, neighbours: np.ndarray, delta: float) -> np.ndarray:
    """``p~_x``: ``p`` with the longest proximity-ordered prefix of ``neighbours`` whose mass is <= ``delta``
    moved onto ``token``. ``TV(p, p~_x)`` equals the mass moved, so it is at most ``delta``.

    >>> relaxed_target(np.array([0.1, 0.2, 0.3, 0.4]), 0, np.array([1, 2]), delta=0.25)
    array([0.3, 0. , 0.3, 0.4])
    """
    if delta <= 0:
        return p
    mass = np.cumsum(p[neighbours])  # [k], nondecreasing
    take = int(np.searchsorted(mass, delta, side="right"))  # neighbours whose running mass stays <= delta
    if take == 0:
        return p
    out = p.copy()
    out[neighbours[:take]] = 0.0
    out[token] += mass[take - 1]
    return out


class LanternVerifier:
    """Speculative sampling against LANTERN's relaxed targets; lossy (see the module docstring).

    Build it with the target's embeddings: :meth:`from_model` (a loaded model), :meth:`from_embeddings`,
    or options with ``model`` set (what the registry's factory does). Randomness is drawn exactly as
    :class:`specplug.verify.SpeculativeSamplingVerifier` draws it, so ``delta = 0`` reproduces its tokens.
    """

    lossless: ClassVar[bool] = False

    def __init__(self, options: LanternOptions | None = None, neighbours: np.ndarray | None = None):
        self.options = options or LanternOptions()
        if neighbours is None:
            if not self.options.model:
                raise ValueError(
                    "lantern needs the target's token embeddings: pass the option model=<the target's --model value "
                    "or folder>, or build LanternVerifier.from_model(model, options) in Python"
                )
            neighbours = latent_neighbours(_embeddings_of(self.options.model), self.options.k, self.options.metric)
        self.neighbours = np.asarray(neighbours, dtype=np.int64)  # [V, k]

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, options: LanternOptions | None = None) -> LanternVerifier:
        options = options or LanternOptions()
        return cls(options, latent_neighbours(embeddings, options.k, options.metric))

    @classmethod
    def from_model(cls, model: Any, options: LanternOptions | None = None) -> LanternVerifier:
        """From a loaded transformers model: its input embedding matrix defines latent proximity."""
        weight = model.get_input_embeddings().weight.detach().float().cpu().numpy()  # [V, d]
        return cls.from_embeddings(weight, options)

    def verify(
        self,
        target_logits: torch.Tensor,  # [num_nodes + 1, V]
        draft: Draft,
        sampling: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> VerifyResult:
        import torch

        from specplug.protocols import VerifyResult
        from specplug.verify.sampling import check_shapes, draft_probs, process_logits, tree_children
        from specplug.verify.speculative import _inverse_cdf, residual

        check_shapes(target_logits, draft)
        if target_logits.shape[-1] != self.neighbours.shape[0]:
            raise ValueError(
                f"lantern's neighbour table covers {self.neighbours.shape[0]} tokens but the target's vocabulary "
                f"has {target_logits.shape[-1]}: build the verifier from the target model itself"
            )
        probs = process_logits(target_logits, sampling).double().cpu().numpy()  # [num_nodes + 1, V]
        q_t = draft_probs(draft, torch.device("cpu"))
        q = None if q_t is None else q_t.double().numpy()  # [num_nodes, V] or None
        device = generator.device if generator is not None else "cpu"
        u = torch.rand(len(draft) + 1, generator=generator, device=device, dtype=torch.float64).cpu().numpy()
        children = tree_children(draft, target_logits.shape[-1])  # ids outside the vocabulary (padding) are no draft
        tokens = draft.token_ids.tolist()
        delta = self.options.delta
        accepted: list[int] = []
        row = 0
        p = probs[0]
        while True:
            moved = False
            for child in children[row]:
                x = tokens[child]
                q_row = None if q is None else q[child]
                qx = 1.0 if q_row is None else float(q_row[x])
                if qx <= 0.0:  # inconsistent draft probs: treat this proposal as deterministic
                    q_row, qx = None, 1.0
                relaxed = relaxed_target(p, x, self.neighbours[x], delta)  # [V], within delta of p
                px = float(relaxed[x])
                if px > 0.0 and u[child] * qx < px:  # u < p~(x) / q(x)
                    accepted.append(child)
                    row = child + 1
                    p = probs[row]
                    moved = True
                    break
                p = residual(relaxed, q_row, x)
            if not moved:
                bonus = _inverse_cdf(p, float(u[-1]))
                return VerifyResult(accepted, [tokens[n] for n in accepted] + [bonus])


def _embeddings_of(model_spec: str) -> np.ndarray:
    """The input token embeddings [V, d] of a ``--model`` value (a built-in name, HF folder or hub id).

    Loads the model only (image models such as the digits one have no text tokenizer)."""
    from transformers import AutoModelForCausalLM

    from specplug.models import resolve_model

    model = AutoModelForCausalLM.from_pretrained(str(resolve_model(model_spec)))
    return model.get_input_embeddings().weight.detach().float().cpu().numpy()
