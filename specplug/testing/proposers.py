"""Test proposers with known behaviour, for checking engines and verifiers rather than methods.

- :class:`NoisyOracleProposer` drafts the true greedy continuation, corrupted at random (chains or
  trees), so accept lengths cover everything from nothing to the whole draft.
- :class:`RandomProposer` drafts random chains or trees, which are almost always rejected.
"""

from __future__ import annotations

__all__ = ["NoisyOracleProposer", "RandomProposer"]


class NoisyOracleProposer:
    """A test proposer that drafts the true greedy continuation, corrupted at random.

    ``references`` maps a prompt (tuple of ids) to its plain greedy continuation (see
    :func:`greedy_reference`). Each drafted token is replaced by a random id with probability
    ``corrupt``, so accept lengths vary from 0 to the whole draft. With ``tree=True`` the draft is a
    tree: the oracle chain plus, at random depths, sibling branches of random tokens (and the chain
    itself is sometimes not the first child), which exercises tree masks and cache gathering.
    Drafts never exceed ``request.max_tokens``.
    """

    needs = frozenset()

    def __init__(self, references: dict, vocab_size: int, corrupt: float = 0.3, tree: bool = False, seed: int = 0):
        import numpy as np

        self.references = {tuple(int(t) for t in k): list(v) for k, v in references.items()}
        self.vocab_size = vocab_size
        self.corrupt = corrupt
        self.tree = tree
        self.rng = np.random.default_rng(seed)
        self.live: dict[str, list[int]] = {}
        self.calls: list[str] = []  # lifecycle events, for contract checks

    def start_request(self, request_id, prompt_ids):
        self.live[request_id] = self.references[tuple(int(t) for t in prompt_ids)]
        self.calls.append(f"start:{request_id}")

    def _token(self, true_token: int) -> int:
        if self.rng.random() < self.corrupt:
            return int(self.rng.integers(self.vocab_size))
        return int(true_token)

    def propose(self, request):
        from specplug.protocols import Draft

        ref = self.live[request.request_id]
        pos = len(request.token_ids) - request.num_prompt_tokens
        budget = request.max_tokens
        truth = ref[pos : pos + budget]
        if not self.tree:
            return Draft.chain([self._token(t) for t in truth])
        tokens: list[int] = []
        parents: list[int] = []
        parent = -1
        for t in truth:
            if len(tokens) >= budget:
                break
            if self.rng.random() < 0.4 and len(tokens) + 2 <= budget:  # a decoy sibling before the chain node
                tokens.append(int(self.rng.integers(self.vocab_size)))
                parents.append(parent)
            tokens.append(self._token(t))
            parents.append(parent)
            parent = len(tokens) - 1
        return Draft(tokens, parents)

    def observe(self, feedback):
        assert feedback.request_id in self.live, "observe for a request that was not started"
        self.calls.append(f"observe:{feedback.request_id}")

    def finish_request(self, request_id):
        self.live.pop(request_id, None)
        self.calls.append(f"finish:{request_id}")


class RandomProposer:
    """Drafts random chains or trees (almost always rejected): checks the rejection paths."""

    needs = frozenset()

    def __init__(self, vocab_size: int, tree: bool = False, seed: int = 0):
        import numpy as np

        self.vocab_size, self.tree = vocab_size, tree
        self.rng = np.random.default_rng(seed)

    def start_request(self, request_id, prompt_ids):
        return None

    def propose(self, request):
        from specplug.protocols import Draft

        n = int(self.rng.integers(0, request.max_tokens + 1))
        tokens = self.rng.integers(self.vocab_size, size=n)
        if not self.tree:
            return Draft.chain(tokens)
        parents = [int(self.rng.integers(-1, i)) for i in range(n)]
        return Draft(tokens, parents)

    def observe(self, feedback):
        return None

    def finish_request(self, request_id):
        return None
