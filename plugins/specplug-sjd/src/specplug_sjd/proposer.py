"""Speculative Jacobi Decoding (Teng et al., ICLR 2025, arXiv 2410.01699): Jacobi iteration for sampling.

Jacobi decoding (``specplug-jacobi``) iterates a window of guesses to a fixed point of *greedy*
decoding; sampled image generation has no fixed point. SJD keeps the iteration and replaces the
fixed-point test by speculative sampling's probabilistic acceptance:

1. the window holds guessed tokens ``w_1..w_n`` for the positions after the root, each with the
   distribution ``q_i`` it was drawn from;
2. one target forward over the window gives ``p_i = p(. | committed, w_<i)`` at every position; the
   verifier accepts ``w_i`` with probability ``min(1, p_i(w_i) / q_i(w_i))`` and at the first
   rejection draws from ``norm(max(0, p_i - q_i))`` (specplug's ``speculative_sampling`` verifier);
3. the next iterate *samples* each later position from this iteration's ``p_i`` (conditioned on the
   old guesses, the Jacobi update) and remembers ``p_i`` as its ``q``; fresh positions at the end of
   the window get initial tokens.

Mapped onto specplug's contracts: the window is a chain :class:`~specplug.protocols.Draft` with
``probs`` (its ``q`` rows), the engine reports the target's distribution at every draft position
(``Need.target_probs``), and :func:`next_iterate` is the update. Each new guess is drawn afresh from a
distribution fixed before the verifier's random numbers, so in exact arithmetic the output is
distributed as plain sampling (``specplug-image``'s tests check it with a chi-square test); the
catalogue's card still files SJD as lossy, as the paper's pipelines (top-k, classifier-free guidance
around the model) are. At temperature 0 every ``p_i`` is one-hot and SJD is Jacobi decoding.

Initial tokens (``init``): ``random`` draws them uniformly from ``[init_low, init_high)`` and declares
that uniform distribution as their ``q`` (they are then accepted with probability
``min(1, p(x) * n)``, never less than the ``p(x)`` of a one-hot guess, which is what the paper's
code declares); ``repeat_last`` repeats the last committed token as a one-hot guess.

Engine-free: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback

__all__ = ["SJDOptions", "SJDProposer", "next_iterate"]


class SJDOptions(MethodOptions):
    """Options of ``sjd``."""

    window: int = Field(16, ge=1, le=256, description="Guesses iterated per step (the engine's k also clips it).")
    init: Literal["random", "repeat_last"] = Field(
        "random", description="Initial guesses: uniform random tokens from [init_low, init_high), or the last token repeated."
    )
    init_low: int = Field(0, ge=0, description="Smallest token id of random initial guesses.")
    init_high: int | None = Field(
        None, ge=1,
        description="One past the largest token id of random initial guesses; default: the target's vocabulary "
        "(known after the first step, which repeats the last token).",
    )
    seed: int = Field(0, ge=0, description="Seed of the proposer's own random numbers (initial guesses, Jacobi updates).")

    @model_validator(mode="after")
    def _range(self) -> SJDOptions:
        if self.init_high is not None and self.init_high <= self.init_low:
            raise ValueError(f"init_high ({self.init_high}) must be larger than init_low ({self.init_low})")
        return self


def next_iterate(target_probs: np.ndarray, num_accepted: int, rng: np.random.Generator) -> tuple[list[int], np.ndarray]:
    """The Jacobi update of SJD: guesses for the positions after the bonus token, sampled from this
    iteration's target distributions, with those distributions as their ``q``.

    ``target_probs[0]`` follows the root and ``target_probs[i + 1]`` follows guess ``i``; with
    ``num_accepted`` guesses accepted the bonus token took position ``num_accepted``, so rows
    ``num_accepted + 1 ..`` guess the positions after it. Returns ``(tokens, q)`` with ``q`` of
    shape ``[len(tokens), V]``.
    """
    rows = np.asarray(target_probs[num_accepted + 1 :], dtype=np.float64)  # [m, V]
    if rows.shape[0] == 0:
        return [], rows
    rows = rows / rows.sum(axis=1, keepdims=True)
    cdf = np.cumsum(rows, axis=1)  # [m, V]
    u = rng.random(rows.shape[0])[:, None] * cdf[:, -1:]
    tokens = np.minimum((cdf <= u).sum(axis=1), rows.shape[1] - 1)  # inverse CDF per row
    for i, t in enumerate(tokens):  # rounding at the top end must never pick a zero-probability token
        while rows[i, t] <= 0.0:
            t -= 1
        tokens[i] = t
    return [int(t) for t in tokens], rows


@dataclass
class _State:
    tokens: list[int] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)  # [V] distribution each guess was drawn from
    committed: int = 0  # committed tokens the window continues; any other length resets it
    rng: np.random.Generator | None = None


class SJDProposer(BaseProposer):
    """One Jacobi window per request, refined with the target's sampled predictions."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_probs})

    def __init__(self, options: SJDOptions | None = None):
        self.options = options or SJDOptions()
        self._states: dict[str, _State] = {}
        self._vocab: int | None = None  # the target's vocabulary, learned from the first feedback
        self._seeds = np.random.SeedSequence(self.options.seed)

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        # A fresh random stream per request (never one derived from the prompt: two requests with the
        # same prompt must not propose the same "random" guesses, or declaring their q as the
        # distribution they were drawn from would be false and the output biased).
        self._states[request_id] = _State(rng=np.random.default_rng(self._seeds.spawn(1)[0]))

    def _fresh(self, state: _State, count: int, last_token: int, vocab: int) -> tuple[list[int], list[np.ndarray]]:
        """``count`` initial guesses with their q rows (``[vocab]`` each)."""
        if self.options.init == "random":
            high = min(self.options.init_high or vocab, vocab)
            low = min(self.options.init_low, high - 1)
            tokens = state.rng.integers(low, high, size=count).tolist()
            row = np.zeros(vocab)
            row[low:high] = 1.0 / (high - low)
            return tokens, [row] * count
        one_hot = np.zeros(vocab)
        one_hot[last_token] = 1.0
        return [last_token] * count, [one_hot] * count

    def propose(self, request: ProposalRequest) -> Draft:
        state = self._states.get(request.request_id)
        if state is None:
            self.start_request(request.request_id, request.prompt_ids)
            state = self._states[request.request_id]
        budget = min(self.options.window, request.max_tokens)
        if budget <= 0:
            return Draft.empty()
        if state.committed != len(request.token_ids):  # first step, or a history we did not see grow
            state.tokens, state.q = [], []
            state.committed = len(request.token_ids)
        last = int(request.token_ids[-1])
        vocab = self._vocab
        if vocab is None:  # before the first feedback the vocabulary is unknown: deterministic guesses
            return Draft.chain([last] * budget)
        tokens, q = state.tokens[:budget], state.q[:budget]
        if len(tokens) < budget:
            more_tokens, more_q = self._fresh(state, budget - len(tokens), last, vocab)
            tokens, q = tokens + more_tokens, q + more_q
        state.tokens, state.q = tokens, q
        return Draft.chain(tokens, probs=np.stack(q))  # probs: [budget, V]

    def observe(self, feedback: StepFeedback) -> None:
        state = self._states.get(feedback.request_id)
        if state is None:
            return
        state.committed += len(feedback.emitted)
        if feedback.target_probs is None:  # an engine without the need: start over from initial guesses
            state.tokens, state.q = [], []
            return
        self._vocab = self._vocab or int(feedback.target_probs.shape[1])
        rows = feedback.target_probs[: len(feedback.draft) + 1]
        tokens, q = next_iterate(rows, len(feedback.accepted_nodes), state.rng)
        state.tokens, state.q = tokens, list(q)

    def finish_request(self, request_id: str) -> None:
        self._states.pop(request_id, None)
