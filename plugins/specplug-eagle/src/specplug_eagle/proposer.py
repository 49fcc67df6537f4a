"""EAGLE, EAGLE-2 and EAGLE-3 drafting in specplug's reference engine.

One proposer class drives all three; they differ in the head and in the shape of the draft.

- **EAGLE** (Li et al., arXiv 2401.15077): one decoder layer over (the target's feature, the next
  token's embedding), sharing the target's embeddings and LM head. It drafts a *chain*: the head
  autoregresses on its own output features, with its own KV cache.
- **EAGLE-2** (arXiv 2406.16858): the same head, drafting a *dynamic tree* ranked by the head's
  cumulative confidence (:mod:`specplug_eagle.tree`).
- **EAGLE-3** (arXiv 2503.01840): the head reads the target's low, middle and high layer states
  fused by ``fc`` ([n, 3H] -> [n, H]) at its first step and its own output after, and scores a
  reduced draft vocabulary mapped to target ids; chain or dynamic tree (default).

The head's KV cache (:class:`~specplug_eagle.head_cache.HeadCache`) holds entries built from the
target's real states; draft entries are dropped after every step, and the states the target
hands over in :attr:`ProposalRequest.hidden_states` for the accepted positions take their place.

Sampling (temperature > 0). A chain samples each token from the head's distribution under the
request's sampling and returns ``q`` (target-vocabulary rows), so speculative sampling is exact.
A tree's nodes are the head's *deterministic* top-k choices and carry no ``q``: the verifier then
treats each as a one-hot proposal (accept ``x`` with probability ``p(x)``, else remove ``x`` from
``p`` and try the next sibling), which is lossless for any deterministic drafting rule and needs no
independent draws of siblings (SpecInfer's condition for trees with ``q``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["Eagle2Options", "Eagle3Options", "Eagle3Proposer", "EagleOptions", "EagleProposer", "Eagle2Proposer", "HeadTopKDrafter"]


class EagleOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of a trained head in vLLM's layout; default: the folder `specplug train` writes "
        "for this method and target in specplug's cache")
    tree: Literal["chain", "dynamic"] = Field("chain", description="draft a chain, or EAGLE-2's dynamic tree")
    tree_size: int | None = Field(
        None, ge=1, description="most draft nodes per step (chain length or tree nodes); default: the engine's k")
    depth: int = Field(5, ge=1, description="dynamic tree: expansions (the deepest a node can be)")
    top_k: int = Field(4, ge=1, description="dynamic tree: children per expanded node and nodes expanded per depth")


class Eagle2Options(EagleOptions):
    tree: Literal["chain", "dynamic"] = Field("dynamic", description="draft EAGLE-2's dynamic tree, or a chain")


class Eagle3Options(Eagle2Options):
    pass


class EagleProposer(BaseProposer):
    """Drafts with a trained EAGLE-family head; see the module docstring."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    head_method: ClassVar[str] = "eagle"  # the method the head must have been trained for
    method_id: ClassVar[str] = "eagle"

    def __init__(self, options: EagleOptions | None = None) -> None:
        self.options = options or EagleOptions()
        self.hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)
        self.runner = None
        self._bound = None  # the target model the runner was loaded for
        self.vocab_size = 0
        self.caches: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        from specplug_eagle.heads import default_head_dir

        return default_head_dir(self.head_method, info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{self.method_id} needs the target model itself (the head shares its embeddings and LM "
                             "head); this engine does not give it: run it in specplug's reference engine, or use vLLM's "
                             f"native {self.head_method!r} method")
        if self._bound is info.model and self.runner is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no trained {self.head_method} head at {folder}. Make one: `specplug train data --model MODEL --out DATA` "
                f"then `specplug train {self.head_method} --model MODEL --data DATA`, or pass the option head=DIR")
        from specplug_eagle.heads import load_runner

        runner = load_runner(folder, info.model)
        if runner.method != self.head_method:
            raise ValueError(f"the head in {folder} was trained for {runner.method!r}; method {self.method_id!r} needs a "
                             f"{self.head_method!r} head (`specplug train {self.head_method} ...`)")
        self.runner, self._bound, self.vocab_size = runner, info.model, int(info.vocab_size)
        self.hidden_state_layers = runner.hidden_state_layers
        self.caches.clear()

    def start_request(self, request_id: str, prompt_ids: np.ndarray) -> None:
        self._cache(request_id)

    def finish_request(self, request_id: str) -> None:
        self.caches.pop(request_id, None)

    def _cache(self, request_id: str):
        if self.runner is None:
            raise RuntimeError(f"{self.method_id}: bind_target was not called; the engine must bind a target first")
        cache = self.caches.get(request_id)
        if cache is None:
            from specplug_eagle.head_cache import HeadCache

            cache = self.caches[request_id] = HeadCache(self.runner)
        return cache

    # -- drafting -------------------------------------------------------------------------------
    def _take_states(self, request: ProposalRequest):
        """Feed the target's new hidden states to the request's head cache; the cache, or ``None``
        when there is no state before the root yet (a one-token prompt's first step)."""
        cache = self._cache(request.request_id)
        states = request.hidden_states
        if states is not None and states.shape[0]:
            if request.hidden_start != cache.real:
                raise RuntimeError(f"{self.method_id}: got hidden states from position {request.hidden_start} but the head "
                                   f"holds {cache.real}; each position must be handed over once, in order")
            n = states.shape[0]
            next_tokens = request.token_ids[request.hidden_start + 1 : request.hidden_start + 1 + n].tolist()
            cache.feed_real(next_tokens, states.reshape(n, -1))  # [n, layers * hidden]: EAGLE-3 fuses its layers
        if cache.real == 0 or cache.real != len(request.token_ids) - 1:
            return None
        return cache

    def propose(self, request: ProposalRequest) -> Draft:
        cache = self._take_states(request)
        if cache is None:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        if size < 1:
            return Draft.empty()
        try:
            if self.options.tree == "chain":
                return self._chain(cache, size, request)
            return self._tree(cache, size, request)
        finally:
            cache.discard_drafts()

    def topk_drafter(self, request: ProposalRequest) -> HeadTopKDrafter | None:
        """The head as a top-k drafter for this step (:class:`specplug.kit.trees.TopKDrafter`), for the
        tree methods of the drafting kit; ``None`` before the head has a state for the root. The
        caller calls its ``close()`` when the tree is built (the draft entries are dropped)."""
        cache = self._take_states(request)
        if cache is None:
            return None
        return HeadTopKDrafter(cache, self.runner, self.vocab_size, request.sampling)

    def _chain(self, cache, size: int, request: ProposalRequest) -> Draft:
        import torch

        from specplug.verify.sampling import process_logits, sample_token

        sampling = request.sampling
        greedy = sampling is None or sampling.greedy
        hidden, logits = cache.root_hidden, cache.root_logits
        tokens: list[int] = []
        q_rows = []
        for depth in range(1, size + 1):
            if greedy:
                index = int(logits.argmax())
            else:
                probs = process_logits(logits[None], sampling)[0]
                index = sample_token(probs, self._generator(request))
                q_rows.append(probs)
            token = int(self.runner.to_target(np.array([index]))[0])
            tokens.append(token)
            if depth == size:
                break
            slots = list(range(cache.real, cache.length))  # the chain so far: every draft entry is an ancestor
            out, out_logits = cache.feed_draft([token], hidden[None], [depth], [slots])
            hidden, logits = out[0], out_logits[0]
        if greedy:
            return Draft.chain(tokens)
        q = self.runner.expand_probs(torch.stack(q_rows), self.vocab_size)
        return Draft.chain(tokens, probs=q)

    def _generator(self, request: ProposalRequest):
        import torch

        gen = getattr(self, "_gen", None)
        if gen is None:
            gen = self._gen = torch.Generator().manual_seed(0)
        return gen

    def _tree(self, cache, size: int, request: ProposalRequest) -> Draft:
        from specplug.kit.trees import dynamic_tree

        drafter = HeadTopKDrafter(cache, self.runner, self.vocab_size, request.sampling)
        tree = dynamic_tree(drafter, self.options.top_k, min(self.options.depth, size), size)
        return Draft(tree.token_ids, tree.parents)


class HeadTopKDrafter:
    """A trained head's top-k continuations for a batch of tree nodes (the drafting kit's
    :class:`~specplug.kit.trees.TopKDrafter`): expanding nodes is one head forward over their
    entries, each under a tree mask (its real prefix, its ancestors' draft entries, itself)."""

    def __init__(self, cache, runner, vocab_size: int, sampling=None) -> None:
        self.cache, self.runner, self.vocab_size, self.sampling = cache, runner, int(vocab_size), sampling
        self.hidden_of = {-1: cache.root_hidden}  # node -> its entry's output feature
        self.logits_of = {-1: cache.root_logits}
        self.slot_of: dict[int, int] = {}
        self.depth_of = {-1: 0}
        self.max_k = int(cache.root_logits.shape[-1])

    def _feed(self, nodes, token_ids, parents) -> None:
        import torch

        todo = [n for n in nodes if n >= 0 and n not in self.slot_of]
        if not todo:
            return
        ancestors = []
        for node in todo:
            chain, parent = [], int(parents[node])
            while parent >= 0:
                chain.append(self.slot_of[parent])
                parent = int(parents[parent])
            ancestors.append(chain[::-1])
            self.depth_of[node] = self.depth_of[int(parents[node])] + 1
        features = torch.stack([self.hidden_of[int(parents[node])] for node in todo])
        past = self.cache.length
        out, logits = self.cache.feed_draft([int(token_ids[node]) for node in todo], features,
                                            [self.depth_of[node] for node in todo], ancestors)
        for j, node in enumerate(todo):
            self.hidden_of[node], self.logits_of[node], self.slot_of[node] = out[j], logits[j], past + j

    def expand(self, nodes, token_ids, parents, k: int, with_dists: bool = False):
        import torch

        from specplug.kit.trees import Expansion
        from specplug.verify.sampling import process_logits

        nodes = [int(n) for n in nodes]
        self._feed(nodes, token_ids, parents)
        logits = torch.stack([self.logits_of[n] for n in nodes]).float()
        probs, index = torch.softmax(logits, -1).topk(min(int(k), self.max_k), dim=-1)
        dists = None
        if with_dists:
            from specplug.protocols import SamplingParams

            dists = self.runner.expand_probs(process_logits(logits, self.sampling or SamplingParams()), self.vocab_size)
        return Expansion(self.runner.to_target(index.cpu().numpy()), probs.double().cpu().numpy(), dists)

    def close(self) -> None:
        self.cache.discard_drafts()


class Eagle2Proposer(EagleProposer):
    method_id = "eagle2"


class Eagle3Proposer(EagleProposer):
    head_method = "eagle3"
    method_id = "eagle3"
