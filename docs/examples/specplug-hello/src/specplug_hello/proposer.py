"""The bigram-cache proposer: engine-free, it imports neither torch, transformers nor vllm."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from specplug import BaseProposer, Draft, MethodOptions, ProposalRequest


# --8<-- [start:options]
class BigramOptions(MethodOptions):
    """Options of the bigram-cache method (unknown keys are rejected by ``MethodOptions``)."""

    max_draft: int = Field(default=8, ge=1, le=64, description="The most tokens proposed per step.")
# --8<-- [end:options]


# --8<-- [start:proposer]
class _State:
    """Per-request memory: the token that last followed each token, and how far we have read."""

    def __init__(self) -> None:
        self.next_of: dict[int, int] = {}  # token -> the token that followed it most recently
        self.read = 0  # bigrams (token_ids[i], token_ids[i + 1]) for i < read are in next_of


class BigramProposer(BaseProposer):
    """Guess that history repeats one token at a time.

    Example: with committed tokens ``[5, 6, 7, 5, 6, 9, 5]`` the table says 5 -> 6 (its latest
    follower), 6 -> 9 and 9 -> 5; the root is 5, so the draft follows 5 -> 6 -> 9 -> 5 -> ... and with
    ``max_tokens=3`` it is ``[6, 9, 5]``.
    """

    def __init__(self, options: BigramOptions) -> None:
        self.options = options
        self._states: dict[str, _State] = {}

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self._states[request_id] = _State()

    def finish_request(self, request_id: str) -> None:
        self._states.pop(request_id, None)

    def propose(self, request: ProposalRequest) -> Draft:
        state = self._states.setdefault(request.request_id, _State())
        ids = request.token_ids  # [num_committed] int64
        if state.read > len(ids) - 1:  # the history got shorter: a new request in the same slot
            state = self._states[request.request_id] = _State()
        # Only the tokens committed since the last step are read: the cost per step stays small.
        for i in range(state.read, len(ids) - 1):
            state.next_of[int(ids[i])] = int(ids[i + 1])
        state.read = max(len(ids) - 1, 0)

        limit = min(self.options.max_draft, request.max_tokens)
        draft: list[int] = []
        token = int(ids[-1]) if len(ids) else None
        while token is not None and len(draft) < limit:
            token = state.next_of.get(token)
            if token is not None:
                draft.append(token)
        return Draft.chain(draft)
# --8<-- [end:proposer]
