"""Ouroboros: phrase-level drafting from a candidate pool (Zhao et al., arXiv 2402.13720).

A draft model drafts for the target, but phrase by phrase instead of token by token, from a pool of
candidate phrases that decoding itself fills (hence the name):

- **Drafting via phrases**: at each draft step, with the draft model's next token ``x``, the pool's
  phrases that start with ``x`` are checked by the draft model itself in *one* forward (the
  candidates as branches of a tree under ``x``); the longest candidate prefix the draft model agrees
  with (its own argmax at every position) is taken at once. One draft forward so yields several
  tokens, and the draft is exactly what the draft model would have drafted token by token.
- **Lengthening drafts via phrases**: after ``draft_steps`` draft forwards, the pool's best phrase
  for the draft's next token is appended without any forward (the target verifies it with the rest).
- **Phrases from verification**: after the target verified a draft, the part past the first
  rejection is not thrown away: where the target's own predictions agree with the rejected draft
  tokens for two or more positions in a row, that run becomes a phrase.
- **Phrases from the history**: the committed text's phrases (``phrase_len`` tokens) enter the pool,
  and the pool is kept across requests (bounded: ``pool_width`` phrases per first token, the most
  recent first), so later requests start warm.

specplug needs the target's predictions at the draft positions for the third source
(:attr:`~specplug.protocols.Need.target_predictions`: the reference engine gives them). Lossless:
the target verifies every draft (greedy match or speculative sampling of a deterministic draft).

Left out: the paper's batched verification of several candidate drafts' tails by the target (the
target here verifies one chain), and its GPU-specific tuning of pool sizes.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback, TargetInfo

__all__ = ["OuroborosOptions", "OuroborosProposer", "PhrasePool"]


class OuroborosOptions(MethodOptions):
    """Options of ``ouroboros``. The draft is ``model`` (a folder) or ``layers`` of the target."""

    model: str | None = Field(None, description="The draft model folder (e.g. from 'specplug models derive smollm2-135m --layers 0-3').")
    layers: str | None = Field(None, description="Draft with these decoder layers of the target itself (e.g. '0-3'), sharing its weights.")
    phrase_len: int = Field(4, ge=2, le=32, description="Tokens per phrase in the pool (the first one is its key).")
    pool_width: int = Field(4, ge=1, le=64, description="Phrases kept per first token (the most recent first); also how many the draft model checks per step.")
    draft_steps: int = Field(4, ge=1, le=64, description="Draft-model forwards per draft before the pool's phrase is appended.")
    max_pool_keys: int = Field(65536, ge=1, description="First tokens the pool keeps (least recently used first out).")

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _one_source(self) -> OuroborosOptions:
        if (self.model is None) == (self.layers is None):
            raise ValueError("give exactly one of 'model' (a draft folder, e.g. from 'specplug models derive smollm2-135m "
                             "--layers 0-3') or 'layers' (e.g. '0-3': draft with those layers of the target)")
        return self


class PhrasePool:
    """Phrases by first token: at most ``width`` per token, the most recent first, no duplicates;
    at most ``max_keys`` tokens (least recently used evicted)."""

    def __init__(self, width: int, max_keys: int) -> None:
        self.width = width
        self.max_keys = max_keys
        self._by_first: OrderedDict[int, deque[tuple[int, ...]]] = OrderedDict()

    def add(self, phrase) -> None:
        phrase = tuple(int(t) for t in phrase)
        if len(phrase) < 2:
            return
        entries = self._by_first.get(phrase[0])
        if entries is None:
            entries = self._by_first[phrase[0]] = deque(maxlen=self.width)
            if len(self._by_first) > self.max_keys:
                self._by_first.popitem(last=False)
        else:
            self._by_first.move_to_end(phrase[0])
            if phrase in entries:
                entries.remove(phrase)
        entries.appendleft(phrase)

    def get(self, first: int) -> list[tuple[int, ...]]:
        return list(self._by_first.get(int(first), ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_first.values())


@dataclass
class OuroborosCounts:
    draft_forwards: int = 0  # draft-model forwards (a tree check of pool phrases counts as one)
    drafted_by_model: int = 0  # draft tokens the draft model produced (its forwards)
    from_phrases: int = 0  # ... of which came from pool phrases it agreed with (more than one token per forward)
    appended: int = 0  # draft tokens appended from the pool without a forward (lengthening)
    phrases_from_verification: int = 0
    draft_s: float = 0.0


def agreeing_runs(draft: np.ndarray, predictions: np.ndarray, accepted: int, min_len: int = 2) -> list[list[int]]:
    """Runs of draft tokens past the first rejection that the target's predictions agree with.

    ``predictions[j]`` is the target's argmax after draft node ``j - 1`` (``j = 0``: after the root),
    so draft token ``j`` agrees when ``draft[j] == predictions[j]``. Positions ``accepted + 1`` on
    (past the rejected token) are scanned; runs of ``min_len`` or more agreeing tokens are returned.
    Example: draft ``[5, 6, 7, 8, 9]``, predictions ``[5, 1, 7, 8, 2, 0]``, accepted 1 -> ``[[7, 8]]``.
    """
    runs, run = [], []
    for j in range(accepted + 1, len(draft)):
        if draft[j] == predictions[j]:
            run.append(int(draft[j]))
        else:
            if len(run) >= min_len:
                runs.append(run)
            run = []
    if len(run) >= min_len:
        runs.append(run)
    return runs


class OuroborosProposer(BaseProposer):
    """Ouroboros' drafter (see the module docstring)."""

    def __init__(self, options: OuroborosOptions) -> None:
        self.options = options
        needs = {Need.target_predictions}
        if options.layers is not None:
            needs.add(Need.target_model)
        self.needs = frozenset(needs)
        self.pool = PhrasePool(options.pool_width, options.max_pool_keys)
        self.counts = OuroborosCounts()
        self._draft_model: Any = None
        self._bound_to: Any = None
        self._caches: dict[str, Any] = {}
        self._indexed: dict[str, int] = {}  # request -> committed positions whose phrases are in the pool

    def bind_target(self, target: TargetInfo) -> None:
        key = (id(target.model), target.vocab_size)
        if key == self._bound_to:
            return
        from specplug.kit.draft_models import bind_draft_model

        model, _ = bind_draft_model(target, method="ouroboros", layers=self.options.layers, model=self.options.model)
        self._draft_model = model
        self._caches.clear()
        self._bound_to = key

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        from specplug.kit.drafting import DraftCache

        if self._draft_model is None:
            raise RuntimeError("ouroboros is not bound to a target: the engine calls bind_target before the first request")
        self._caches[request_id] = DraftCache(self._draft_model)
        self._indexed[request_id] = 0
        self._index_history(request_id, prompt_ids.tolist())

    def finish_request(self, request_id: str) -> None:
        self._caches.pop(request_id, None)
        self._indexed.pop(request_id, None)

    def _index_history(self, request_id: str, committed: list[int]) -> None:
        """Phrases of the committed text not yet in the pool (each complete phrase once)."""
        size = self.options.phrase_len
        start = self._indexed.get(request_id, 0)
        for s in range(start, len(committed) - size + 1):
            self.pool.add(committed[s : s + size])
        self._indexed[request_id] = max(start, len(committed) - size + 1)

    # -- drafting ----------------------------------------------------------------------------------
    def _phrase_step(self, cache, x: int, phrases: list[tuple[int, ...]]):
        """One draft forward over ``x`` and the candidate phrases' tails as a tree; keeps the longest
        branch the draft model agrees with. Returns the tokens taken (``x`` first) and the logits after them."""
        tokens, parents, paths = [x], [-1], []
        for phrase in phrases:
            parent, path = 0, []
            for t in phrase[1:]:
                tokens.append(int(t))
                parents.append(parent)
                parent = len(tokens) - 1
                path.append(parent)
            paths.append(path)
        base = cache.lm.cache_len
        logits = self._tree_forward(cache, tokens, parents)
        preds = logits.argmax(-1).tolist()
        best: list[int] = []
        for path in paths:
            taken, prev = [], 0
            for node in path:
                if preds[prev] != tokens[node]:
                    break
                taken.append(node)
                prev = node
            if len(taken) > len(best):
                best = taken
        nodes = [0] + best
        cache.lm.keep(list(range(base)) + [base + n for n in nodes])
        taken_tokens = [tokens[n] for n in nodes]
        cache.tokens.extend(taken_tokens)
        return taken_tokens, logits[nodes[-1]]

    @staticmethod
    def _tree_forward(cache, tokens: list[int], parents: list[int]):
        """Logits after every node of a tree whose node 0 follows the cached text (``parents[0] = -1``)."""
        # kit.target's tree inputs: the last len(parents) inputs are draft nodes under the token before them;
        # here node 0 is itself a child of the cached text, so it goes in as the one "pending" token
        # and the rest as the tree below it (parents shifted by one).
        rest = np.asarray(parents[1:], dtype=np.int64) - 1  # node 0 becomes the root (-1)
        return cache.lm.forward(tokens, parents=rest, logits_to_keep=len(tokens))

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        start = time.perf_counter()
        committed = request.token_ids.tolist()
        self._index_history(request.request_id, committed)
        cache = self._caches[request.request_id]
        budget = request.max_tokens
        draft: list[int] = []
        with torch.no_grad():
            logits = cache.sync(committed)
            self.counts.draft_forwards += 1
            steps = 0
            while len(draft) < budget and steps < self.options.draft_steps:
                x = int(logits.argmax())
                phrases = self.pool.get(x)
                if phrases:
                    taken, logits = self._phrase_step(cache, x, phrases)
                    self.counts.from_phrases += len(taken) - 1
                else:
                    taken, logits = [x], cache.feed([x])
                self.counts.draft_forwards += 1
                self.counts.drafted_by_model += len(taken)
                draft.extend(taken)
                steps += 1
            if len(draft) < budget:  # lengthening: the pool's phrase for the next token, with no forward
                x = int(logits.argmax())
                phrases = self.pool.get(x)
                tail = [x] + list(phrases[0][1:]) if phrases else [x]
                tail = tail[: budget - len(draft)]
                self.counts.appended += len(tail)
                draft.extend(tail)
        self.counts.draft_s += time.perf_counter() - start
        return Draft.chain(draft[:budget])

    def observe(self, feedback: StepFeedback) -> None:
        if feedback.target_predictions is None or len(feedback.draft) == 0:
            return
        for run in agreeing_runs(feedback.draft.token_ids, np.asarray(feedback.target_predictions), len(feedback.accepted_nodes)):
            self.pool.add(run)
            self.counts.phrases_from_verification += 1
