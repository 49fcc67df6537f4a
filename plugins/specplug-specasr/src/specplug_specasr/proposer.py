"""SpecASR (Wei, Zhong, Xu, Wang, Huang, Li; arXiv 2507.18181) for a Whisper target.

SpecASR's observation: ASR decoding is conditioned on the audio, so a small ASR model's transcript
stays aligned with the large model's even after a mismatch in the middle. Its three mechanisms, as
implemented here (a draft decoder from ``specplug speech distill`` is the small ASR model):

1. **Adaptive draft length** (:meth:`SpecAsrProposer._extend`): the draft keeps drafting while its
   confidence (its top probability) stays at or above ``truncate_below``, up to ``max_tokens`` (the
   engine's ``k``) or EOS, instead of a fixed length: long drafts where the audio is clear, short
   ones where the draft hesitates.
2. **Draft sequence recycling** (:meth:`SpecAsrProposer._recycled`): after the target rejects draft
   token ``d[a]`` and emits its own ``c``, the old draft's tail is usually still right (the
   transcripts realign). The draft runs one step after ``c``; if its token equals ``d[a + 1]``
   (``c`` replaced ``d[a]``) or ``d[a]`` (``c`` was inserted), the old tail from there is reused as
   the new draft without drafting it again token by token (its confidences kept), and drafting
   continues after it only if the budget allows.
3. **Two-pass sparse token tree** (:meth:`SpecAsrProposer._branches`): the first pass is the chain
   above; the second adds, at the ``max_branches`` chain positions where the draft was least
   confident (top probability below ``branch_below``), its second choice as a sibling, extended
   greedily by ``branch_depth - 1`` tokens. The target verifies the tree in one forward (tree
   attention); the accepted path may leave the chain at a branch. The tree fits in the engine's
   ``k`` nodes: the chain leaves ``max_branches * branch_depth`` of them (at most half) to the branches.

Greedy only, as the paper (a transcript identical to the target's): at temperature > 0 the proposer
drafts a sampled chain with its distribution ``q`` (no recycling, no tree), which speculative
sampling keeps exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, StepFeedback, TargetInfo

__all__ = ["SpecAsrOptions", "SpecAsrProposer"]


class SpecAsrOptions(MethodOptions):
    """Options of ``specasr``."""

    draft: str | None = Field(None, description="The draft decoder folder ('specplug speech distill' prints it); default: "
                              "the 2-layer draft distilled for this target under $SPECPLUG_CACHE/drafts.")
    num_layers: int = Field(2, ge=1, le=4, description="Which default draft to use when 'draft' is not given.")
    truncate_below: float = Field(0.3, ge=0.0, le=1.0, description="Adaptive length: stop the draft before a token whose "
                                  "draft confidence (top probability) is below this.")
    recycle: bool = Field(True, description="Reuse the previous draft's tail after a rejection when the draft realigns with it.")
    max_branches: int = Field(2, ge=0, description="Second pass: sibling branches added at the least confident chain positions (0: a chain).")
    branch_below: float = Field(0.8, ge=0.0, le=1.0, description="Only chain positions with draft confidence below this get a branch.")
    branch_depth: int = Field(2, ge=1, description="Tokens per branch (its second-choice root plus greedy continuation).")
    seed: int = Field(0, description="Seed of the draft's sampling at temperature > 0.")


@dataclass
class _Chain:
    """The last draft of a request: tokens and the draft's confidence for each."""

    tokens: list[int] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)


@dataclass
class SpecAsrCounts:
    """How often each mechanism fired (for tests and the benchmark's report)."""

    proposals: int = 0
    recycled_proposals: int = 0
    recycled_tokens: int = 0
    branches: int = 0
    truncated: int = 0


class SpecAsrProposer(BaseProposer):
    """SpecASR's drafting over a distilled draft decoder (see the module docstring)."""

    needs = frozenset({Need.target_model})

    def __init__(self, options: SpecAsrOptions) -> None:
        self.options = options
        self.draft: Any = None
        self._bound_to: int | None = None
        self._caches: dict[str, Any] = {}
        self._last: dict[str, _Chain] = {}
        self._pending: dict[str, tuple[list[int], int]] = {}  # request -> (old tail candidates after a rejection)
        self._generators: dict[str, Any] = {}
        self._requests = 0
        self.counts = SpecAsrCounts()

    # -- lifecycle ------------------------------------------------------------------------------
    def bind_target(self, target: TargetInfo) -> None:
        if self._bound_to == id(target.model) and self.draft is not None:
            return
        from specplug.kit.whisper_draft import default_draft_dir, load_draft_decoder

        model = target.model
        if model is None or not getattr(model.config, "is_encoder_decoder", False):
            raise ValueError("specasr drafts for a Whisper target (an encoder-decoder model); use --model whisper-tiny.en")
        self.draft = load_draft_decoder(self.options.draft or default_draft_dir(model, self.options.num_layers), model)
        self._caches.clear()
        self._bound_to = id(model)

    def start_request(self, request_id: str, prompt_ids) -> None:
        import torch

        from specplug.kit.whisper_draft import WhisperDraftCache

        if self.draft is None:
            raise RuntimeError("specasr is not bound to a target: the engine calls bind_target first")
        self._caches[request_id] = WhisperDraftCache(self.draft)
        self._last[request_id] = _Chain()
        self._generators[request_id] = torch.Generator().manual_seed(self.options.seed * 1_000_003 + self._requests)
        self._requests += 1

    def finish_request(self, request_id: str) -> None:
        for table in (self._caches, self._last, self._pending, self._generators):
            table.pop(request_id, None)

    # -- drafting -------------------------------------------------------------------------------
    def propose(self, request: ProposalRequest) -> Draft:
        from specplug.kit.drafting import draft_chain

        rid = request.request_id
        if rid not in self._caches:
            self.start_request(rid, request.prompt_ids)
        cache = self._caches[rid]
        committed = request.token_ids.tolist()
        budget = int(request.max_tokens)
        if request.sampling is not None and not request.sampling.greedy:
            return draft_chain(cache, committed, budget, request.sampling, self._generators[rid])
        self.counts.proposals += 1
        tree_budget = budget
        if self.options.max_branches > 0:  # the second pass's nodes come out of the same k
            budget = max(1, budget - min(self.options.max_branches * self.options.branch_depth, budget // 2))
        chain = self._recycled(rid, cache, committed, budget) if self.options.recycle else None
        if chain is None:
            logits = cache.sync(committed)
            chain = _Chain()
        else:
            logits = None  # recycled tokens are fed on demand by _extend
        chain = self._extend(cache, committed, chain, budget, logits)
        self._last[rid] = chain
        if not chain.tokens:
            return Draft.empty()
        return self._branches(cache, committed, chain, tree_budget)

    def _token(self, index: int) -> int:
        vocab = self.draft.specplug_vocab
        return int(index) if vocab is None else vocab.to_target(int(index))

    def _extend(self, cache, committed: list[int], chain: _Chain, budget: int, logits=None) -> _Chain:
        """Pass 1: draft greedily after ``committed + chain.tokens`` while confident (adaptive length)."""
        import torch

        eos = self.eos
        if chain.tokens and (chain.tokens[-1] in eos or len(chain.tokens) >= budget):
            return chain
        if logits is None:
            logits = cache.sync(committed + chain.tokens)
        while len(chain.tokens) < budget:
            probs = torch.softmax(logits.float(), -1)
            confidence, index = probs.max(-1)
            if float(confidence) < self.options.truncate_below:
                self.counts.truncated += 1
                break
            token = self._token(int(index))
            chain.tokens.append(token)
            chain.confidence.append(float(confidence))
            if token in eos or len(chain.tokens) >= budget:
                break
            logits = cache.feed([token])
        return chain

    @property
    def eos(self) -> frozenset[int]:
        eos = getattr(self.draft.config, "eos_token_id", None)
        return frozenset([eos] if isinstance(eos, int) else (eos or []))

    def _recycled(self, rid: str, cache, committed: list[int], budget: int) -> _Chain | None:
        """The old draft's tail, realigned after the target's correction, or None (see the module docstring)."""
        pending = self._pending.pop(rid, None)
        if pending is None:
            return None
        old, rejected = pending  # old chain tokens and confidences; rejected = index of the rejected draft token
        last = self._last[rid]
        logits = cache.sync(committed)
        import torch

        probs = torch.softmax(logits.float(), -1)
        confidence, index = probs.max(-1)
        token = self._token(int(index))
        for start in (rejected + 1, rejected):  # substitution, then insertion
            if start < len(old) and old[start] == token:
                tail = old[start:]
                conf = last.confidence[start:]
                keep = len(tail)
                for i, c in enumerate(conf):  # the adaptive length applies to recycled tokens too
                    if c < self.options.truncate_below:
                        keep = i
                        break
                keep = min(keep, budget)
                if keep == 0:
                    return None
                self.counts.recycled_proposals += 1
                self.counts.recycled_tokens += keep
                chain = _Chain(tail[:keep], [float(confidence)] + conf[1:keep])
                return chain
        return None

    def _branches(self, cache, committed: list[int], chain: _Chain, budget: int) -> Draft:
        """Pass 2: second-choice siblings at the least confident chain positions, each extended greedily."""
        import torch

        n = len(chain.tokens)
        room = budget - n
        opts = self.options
        if opts.max_branches == 0 or room <= 0:
            return Draft.chain(chain.tokens)
        weak = [i for i in np.argsort(chain.confidence, kind="stable").tolist() if chain.confidence[i] < opts.branch_below]
        tokens = list(chain.tokens)
        parents = list(range(-1, n - 1))
        for position in weak[: opts.max_branches]:
            depth = min(opts.branch_depth, budget - len(tokens))
            if depth <= 0:
                break
            prefix = committed + chain.tokens[:position]
            logits = cache.sync(prefix)
            top = torch.topk(logits.float(), 2).indices.tolist()
            alternative = next((self._token(t) for t in top if self._token(t) != chain.tokens[position]), None)
            if alternative is None:
                continue
            parent = position - 1  # the branch hangs where the chain's token at ``position`` does
            branch = [alternative]
            if depth > 1 and alternative not in self.eos:
                logits = cache.feed([alternative])
                while len(branch) < depth:
                    token = self._token(int(logits.argmax()))
                    branch.append(token)
                    if token in self.eos or len(branch) >= depth:
                        break
                    logits = cache.feed([token])
            for j, token in enumerate(branch):
                parents.append(parent if j == 0 else len(tokens) - 1)
                tokens.append(token)
            self.counts.branches += 1
        if len(tokens) == n:
            return Draft.chain(tokens)
        return Draft(np.asarray(tokens, dtype=np.int64), np.asarray(parents, dtype=np.int64))

    # -- feedback -------------------------------------------------------------------------------
    def observe(self, feedback: StepFeedback) -> None:
        """Remember where the chain was rejected, for recycling at the next step."""
        rid = feedback.request_id
        chain = self._last.get(rid)
        if chain is None or not chain.tokens:
            return
        n = len(chain.tokens)
        accepted = feedback.accepted_nodes
        on_chain = all(node < n for node in accepted)
        a = len(accepted)
        if on_chain and a < n and len(feedback.emitted) == a + 1:  # rejected at chain index a; the target emitted its own token
            self._pending[rid] = (list(chain.tokens), a)
