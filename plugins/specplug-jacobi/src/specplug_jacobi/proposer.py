"""Jacobi decoding: guess a window of future tokens and let the target refine all of them at once.

Santilli et al. ("Accelerating Transformer Inference for Translation via Parallel Decoding", ACL
2023) treat greedy decoding of ``m`` tokens as a system of ``m`` equations
``y_i = argmax p(. | x, y_<i)`` and solve it by Jacobi iteration: start from arbitrary guesses, compute
every ``y_i`` in parallel from the previous iterate, repeat until a fixed point. The prefix up to the
first wrong guess is always right (the greedy-verification argument), so at least one token is fixed
per iteration and the result equals plain greedy decoding.

Mapped onto specplug's contracts: the *draft* is the current window of guesses (a chain); the
engine's verification forward is the Jacobi iteration, and it reports the target's greedy token at
every draft position (``Need.target_predictions``). After a step that accepted ``a`` guesses, the
target's predictions after the *rejected* positions become the next window, shifted past the
accepted tokens and the bonus token; empty slots at the end get the fill token.

Worked example of the kernel :func:`next_window` (window of 4 guesses ``g0..g3``)::

    predictions = [p_root, p0, p1, p2, p3]   # target argmax after the root and after each guess
    >>> next_window([7, 8, 9, 4, 5], num_accepted=1, window=4, fill=0)
    [9, 4, 5, 0]

The target agreed with ``g0 == 7`` (accepted), emitted the bonus ``8`` in place of ``g1``; its
predictions after ``g1`` and later positions (``9, 4, 5``) are the next iterate's guesses for the
tokens after the bonus, and one fill token pads the window back to 4.

Engine-free: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback

__all__ = ["JacobiOptions", "JacobiProposer", "next_window"]


class JacobiOptions(MethodOptions):
    """Options of ``jacobi``."""

    window: int = Field(8, ge=1, le=256, description="Guesses iterated per step (the engine's k also clips it).")
    init: Literal["repeat_last", "pad"] = Field(
        "repeat_last",
        description="Fill for fresh window slots: repeat the last committed token, or pad_token_id.",
    )
    pad_token_id: int = Field(0, ge=0, description="Fill token when init is 'pad'.")


def next_window(predictions: Sequence[int] | np.ndarray, num_accepted: int, window: int, fill: int) -> list[int]:
    """The next Jacobi iterate: target predictions after the first rejected guess, padded with ``fill``.

    ``predictions[0]`` follows the root and ``predictions[i + 1]`` follows guess ``i``; with
    ``num_accepted`` guesses accepted, ``predictions[num_accepted]`` is the bonus token and
    ``predictions[num_accepted + 1:]`` guess the tokens after it.
    """
    rest = [int(t) for t in list(predictions)[num_accepted + 1 :]][:window]
    return rest + [int(fill)] * (window - len(rest))


@dataclass
class _State:
    window: list[int] = field(default_factory=list)
    committed: int = 0  # number of committed tokens the window continues; other lengths reset it


class JacobiProposer(BaseProposer):
    """Keeps one window of guesses per request and refines it with the target's predictions."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_predictions})

    def __init__(self, options: JacobiOptions | None = None):
        self.options = options or JacobiOptions()
        self._states: dict[str, _State] = {}

    def _fill(self, last_token: int) -> int:
        return last_token if self.options.init == "repeat_last" else self.options.pad_token_id

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self._states[request_id] = _State()

    def propose(self, request: ProposalRequest) -> Draft:
        state = self._states.setdefault(request.request_id, _State())
        budget = min(self.options.window, request.max_tokens)
        if budget <= 0:
            return Draft.empty()
        fill = self._fill(int(request.token_ids[-1]))
        if state.committed != len(request.token_ids):  # first step, or a history we did not see grow
            state.window = []
            state.committed = len(request.token_ids)
        guesses = state.window[:budget] + [fill] * (budget - len(state.window[:budget]))
        return Draft.chain(guesses)

    def observe(self, feedback: StepFeedback) -> None:
        state = self._states.get(feedback.request_id)
        if state is None:
            return
        state.committed += len(feedback.emitted)
        last = int(feedback.emitted[-1]) if feedback.emitted else 0
        if feedback.target_predictions is None:  # an engine without the need: start over with fills
            state.window = []
            return
        state.window = next_window(
            feedback.target_predictions[: len(feedback.draft) + 1], len(feedback.accepted_nodes),
            self.options.window, self._fill(last),
        )

    def finish_request(self, request_id: str) -> None:
        self._states.pop(request_id, None)
