"""Torch-side pieces of the tree methods: a draft model as a top-k drafter, the shared tree proposer,
acceptance profiles measured in the reference engine, and verify costs per tree size.

- :class:`ModelTopKDrafter`: a :class:`~specplug.kit.trees.TopKDrafter` over a draft model's
  :class:`~specplug.kit.drafting.DraftCache`. Expanding a batch of nodes is one draft forward: the
  nodes' tokens are appended to the draft's KV cache under a tree mask (each sees the committed
  tokens, its ancestors and itself, at position root + depth; a batch may hold a node and its
  descendants, parents first, as a chain speculated for the draft itself); the step's draft entries
  are rolled back in :meth:`ModelTopKDrafter.close`.
- :class:`TreeSourceOptions`: where a tree method's candidates come from: a derived draft model
  (``draft_model`` folder, or ``draft_layers`` of the target, as ``sps``) or a trained EAGLE head
  (``source=eagle3`` or ``eagle``: the eagle plugin's proposer, built by id from the registry, gives
  its top-k through ``topk_drafter(request)``; no plugin imports another).
- :class:`TreeProposer`: a :class:`~specplug.protocols.Proposer` that asks the source for a top-k
  drafter each step and hands it to :meth:`TreeProposer.build_tree` (each method's own rule).
- :func:`measure_profile`: a positional acceptance vector measured by verifying star drafts (the
  root's top ``width`` children) in the reference engine, at the temperature asked.
- :func:`measure_verify_costs`: seconds per target forward of ``n`` tree nodes after a context.
- :func:`target_fingerprint`: a cheap fingerprint of a loaded model (config and parameter samples).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from specplug.kit.drafting import DraftCache, ReducedVocab, model_view
from specplug.kit.trees import (
    AcceptanceProfile,
    Expansion,
    ProfileCounter,
    TokenTree,
    TopKDrafter,
    TreeShape,
    check_budget,
    instantiate_shape,
)
from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, Need, ProposalRequest, SamplingParams, StepFeedback, TargetInfo
from specplug.verify.sampling import process_logits

__all__ = [
    "ModelTopKDrafter",
    "SampledWithoutReplacement",
    "TreeProposer",
    "TreeSourceOptions",
    "ProfileRun",
    "measure_profile",
    "measure_verify_costs",
    "target_fingerprint",
]


def target_fingerprint(model) -> str:
    """``sha256:<hex>`` over a model's config and, per parameter, its name, shape and a sample of its
    values (first 64 and the sum): equal for the same weights, different for another model."""
    digest = hashlib.sha256()
    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dict(vars(model.config))
    for key in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "_commit_hash"):
        config.pop(key, None)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, param in model.named_parameters():
            flat = param.detach().reshape(-1).float()
            digest.update(f"|{name}|{tuple(param.shape)}|".encode())
            digest.update(flat[:64].cpu().numpy().tobytes())
            digest.update(np.float64(flat.double().sum().item()).tobytes())
    return "sha256:" + digest.hexdigest()


class ModelTopKDrafter:
    """Top-k continuations from a draft model, for one step of one request (see the module doc)."""

    def __init__(self, cache: DraftCache, committed: Sequence[int], sampling: SamplingParams | None = None,
                 vocab_size: int | None = None) -> None:
        self.cache = cache
        self.sampling = sampling or SamplingParams()
        self.committed = [int(t) for t in committed]
        self.root_logits = cache.sync(self.committed)  # [V or N]
        self.base = cache.lm.cache_len  # committed entries
        self.slot_of: dict[int, int] = {}  # node -> its entry in the draft cache
        self.logits_of: dict[int, torch.Tensor] = {-1: self.root_logits}
        self.vocab: ReducedVocab | None = cache.vocab
        self.vocab_size = vocab_size or (self.vocab.vocab_size if self.vocab is not None else int(self.root_logits.shape[-1]))
        self.max_k = int(self.root_logits.shape[-1])
        self.calls = 0

    def _feed(self, nodes: list[int], token_ids: Sequence[int], parents: Sequence[int]) -> None:
        """One draft forward over the nodes not yet in the cache (their ancestors are)."""
        todo = [n for n in nodes if n >= 0 and n not in self.slot_of]
        if not todo:
            return
        lm = self.cache.lm
        past = lm.cache_len
        depth: dict[int, int] = {}
        rows = []
        positions = []
        batch_slot = {node: past + j for j, node in enumerate(todo)}  # a node may follow its parent in one batch
        for j, node in enumerate(todo):
            chain, p = [], int(parents[node])
            while p >= 0:
                slot = self.slot_of.get(p, batch_slot.get(p))
                if slot is None or (p in batch_slot and batch_slot[p] >= past + j):
                    raise ValueError(f"node {node}'s parent {p} was never expanded; expand parents first "
                                     "(or feed them earlier in the same batch)")
                chain.append(slot)
                p = int(parents[p])
            depth[node] = len(chain) + 1
            positions.append(self.base - 1 + depth[node])
            rows.append(chain + [past + j])
        n = len(todo)
        allow = torch.zeros(n, past + n, dtype=torch.bool)
        allow[:, : self.base] = True
        for j, visible in enumerate(rows):
            allow[j, visible] = True
        bias = torch.zeros(n, past + n, dtype=lm.dtype).masked_fill(~allow, torch.finfo(lm.dtype).min)
        logits = lm.forward([int(token_ids[node]) for node in todo], position_ids=torch.tensor(positions), attention_bias=bias)
        self.calls += 1
        for j, node in enumerate(todo):
            self.slot_of[node] = past + j
            self.logits_of[node] = logits[j]

    def expand(self, nodes: Sequence[int], token_ids: Sequence[int], parents: Sequence[int], k: int,
               with_dists: bool = False) -> Expansion:
        nodes = [int(n) for n in nodes]
        self._feed(nodes, token_ids, parents)
        logits = torch.stack([self.logits_of[n] for n in nodes]).float()  # [n, V or N]
        k = min(int(k), self.max_k)
        probs, index = torch.softmax(logits, -1).topk(k, dim=-1)
        tokens = index.numpy()
        if self.vocab is not None:
            tokens = self.vocab.token_ids[tokens]
        dists = None
        if with_dists:
            dists = process_logits(logits, self.sampling)
            if self.vocab is not None:
                dists = self.vocab.expand(dists)
        return Expansion(np.asarray(tokens, dtype=np.int64), probs.double().numpy(), dists)

    def close(self) -> None:
        """Drop this step's draft entries (the cache keeps the committed tokens)."""
        if self.cache.lm.cache_len > self.base:
            self.cache.lm.rollback(self.base)


class SampledWithoutReplacement:
    """A top-k drafter whose ``k`` children of a node are *sampled without replacement* from the
    draft's distribution under the request's sampling (Gumbel top-k), in the order drawn, instead of
    its ``k`` most likely tokens. ``probs`` are the tokens' draft probabilities (for ranking) and
    ``dists`` always carries the node's ``q`` row, which sampling-without-replacement verification
    (Sequoia) needs. Deterministic given the generator."""

    def __init__(self, drafter: TopKDrafter, generator: torch.Generator) -> None:
        self.drafter, self.generator = drafter, generator
        self.max_k = drafter.max_k

    def expand(self, nodes, token_ids, parents, k, with_dists: bool = False) -> Expansion:
        out = self.drafter.expand(nodes, token_ids, parents, 1, with_dists=True)
        q = out.dists.float()  # [n, V]
        k = min(int(k), int((q > 0).sum(-1).min()))
        gumbel = -torch.log(-torch.log(torch.rand(q.shape, generator=self.generator).clamp_min(1e-20)))
        keys = torch.log(q.clamp_min(1e-38)).masked_fill(q <= 0, float("-inf")) + gumbel
        tokens = keys.topk(k, dim=-1).indices  # [n, k] drawn without replacement, in draw order
        probs = q.gather(-1, tokens)
        return Expansion(tokens.numpy().astype(np.int64), probs.double().numpy(), q)

    def close(self) -> None:
        self.drafter.close()


class TreeSourceOptions(MethodOptions):
    """Where a tree method's candidates come from (exactly one source)."""

    source: Literal["draft", "eagle", "eagle3"] = Field(
        "draft", description="draft: a derived draft model (draft_model or draft_layers); eagle / eagle3: a trained "
        "EAGLE / EAGLE-3 head (option head, or the head `specplug train` wrote for this target)")
    draft_model: str | None = Field(None, description="draft model folder (e.g. from 'specplug models derive smollm2-135m --layers 0-3')")
    draft_layers: str | None = Field(None, description="draft with these decoder layers of the target itself (e.g. '0-3'), sharing its weights")
    head: str | None = Field(None, description="source=eagle/eagle3: folder of the trained head (default: specplug's cache)")
    budget: int = Field(16, description="draft nodes per step (the node budget; the engine's k caps it)")

    @model_validator(mode="after")
    def _one_source(self):
        check_budget(self.budget)
        if self.source == "draft":
            if (self.draft_model is None) == (self.draft_layers is None):
                raise ValueError("source=draft needs exactly one of draft_model (a folder, e.g. from 'specplug models derive "
                                 "smollm2-135m --layers 0-3') or draft_layers (e.g. '0-3')")
            if self.head is not None:
                raise ValueError("'head' applies to source=eagle or eagle3")
        elif self.draft_model is not None or self.draft_layers is not None:
            raise ValueError(f"source={self.source} drafts with a trained head; draft_model/draft_layers apply to source=draft")
        return self


class _DraftModelSource:
    """A derived draft model: loaded (or viewed) at bind time, one :class:`DraftCache` per request."""

    def __init__(self, options: TreeSourceOptions) -> None:
        self.options = options
        self.needs = frozenset({Need.target_model})
        self.model = None
        self.caches: dict[str, DraftCache] = {}
        self.vocab_size = 0
        self.label = f"draft:{options.draft_model or 'layers ' + str(options.draft_layers)}"

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError("tree methods draft with a model in specplug's reference engine; this engine does not share its target")
        self.vocab_size = int(info.vocab_size)
        if self.options.draft_layers is not None:
            from specplug.models.derive import parse_layers

            keep = parse_layers(str(self.options.draft_layers), int(info.num_layers or info.model.config.num_hidden_layers))
            self.model = model_view(info.model, keep)
        else:
            from specplug.models import load_model

            param = next(info.model.parameters())
            model, _ = load_model(self.options.draft_model, dtype=param.dtype)
            size = int(model.get_output_embeddings().weight.shape[0])
            if size != info.vocab_size:
                raise ValueError(f"draft model {self.options.draft_model} has a vocabulary of {size}, the target {info.vocab_size}: "
                                 "a draft must share the target's tokenizer ('specplug models derive TARGET --layers 0-3')")
            self.model = model.to(param.device)
        self.caches.clear()

    def start_request(self, request_id: str, prompt_ids) -> None:
        if self.model is None:
            raise RuntimeError("bind_target was not called; the engine must bind a target first")
        self.caches[request_id] = DraftCache(self.model)

    def finish_request(self, request_id: str) -> None:
        self.caches.pop(request_id, None)

    def topk_drafter(self, request: ProposalRequest) -> ModelTopKDrafter | None:
        cache = self.caches.get(request.request_id)
        if cache is None:
            self.start_request(request.request_id, request.prompt_ids)
            cache = self.caches[request.request_id]
        return ModelTopKDrafter(cache, request.token_ids.tolist(), request.sampling, self.vocab_size)

    def observe(self, feedback: StepFeedback) -> None:
        return None


class _HeadSource:
    """A trained EAGLE head: the eagle plugin's proposer, built by id, as a top-k drafter."""

    def __init__(self, options: TreeSourceOptions) -> None:
        from specplug.registry import get_registry

        head_options = {"head": options.head} if options.head else {}
        self.proposer = get_registry().method(options.source).build(head_options)
        if not callable(getattr(self.proposer, "topk_drafter", None)):
            from specplug.kit.trees import TopKUnavailableError

            raise TopKUnavailableError(f"method {options.source!r} cannot give top-k continuations (no topk_drafter)")
        self.needs = frozenset(getattr(self.proposer, "needs", frozenset()))
        self.label = f"{options.source}:{options.head or 'default head'}"

    @property
    def hidden_state_layers(self):
        return self.proposer.hidden_state_layers

    def bind_target(self, info: TargetInfo) -> None:
        self.proposer.bind_target(info)
        self.label = f"{self.proposer.method_id}:{self.proposer.head_folder(info)}"

    def start_request(self, request_id: str, prompt_ids) -> None:
        self.proposer.start_request(request_id, prompt_ids)

    def finish_request(self, request_id: str) -> None:
        self.proposer.finish_request(request_id)

    def topk_drafter(self, request: ProposalRequest):
        return self.proposer.topk_drafter(request)

    def observe(self, feedback: StepFeedback) -> None:
        return None


def make_source(options: TreeSourceOptions):
    return _DraftModelSource(options) if options.source == "draft" else _HeadSource(options)


class TreeProposer(BaseProposer):
    """A tree method over a top-k source: subclasses implement :meth:`build_tree`.

    ``needs`` and ``hidden_state_layers`` are the source's (a head needs the target's states)."""

    tree_method: ClassVar[str] = "tree"

    def __init__(self, options: TreeSourceOptions) -> None:
        self.options = options
        self.source = make_source(options)
        self.needs = self.source.needs
        self.info: TargetInfo | None = None
        self.last_tree: TokenTree | None = None

    @property
    def hidden_state_layers(self):
        return getattr(self.source, "hidden_state_layers", ())

    def bind_target(self, info: TargetInfo) -> None:
        self.source.bind_target(info)
        self.info = info

    def start_request(self, request_id: str, prompt_ids) -> None:
        self.source.start_request(request_id, prompt_ids)

    def finish_request(self, request_id: str) -> None:
        self.source.finish_request(request_id)

    def observe(self, feedback: StepFeedback) -> None:
        self.source.observe(feedback)

    def node_budget(self, request: ProposalRequest) -> int:
        """Draft nodes allowed this step: the option ``budget``, capped by the engine's."""
        return min(int(request.max_tokens), self.options.budget)

    def propose(self, request: ProposalRequest) -> Draft:
        budget = self.node_budget(request)
        drafter = self.source.topk_drafter(request)
        if drafter is None or budget < 1:  # the head has no state before the root yet
            if drafter is not None:
                drafter.close()
            return Draft.empty()
        try:
            tree = self.build_tree(self.wrap_drafter(drafter, request), budget, request)
        finally:
            drafter.close()
        self.last_tree = tree
        if len(tree) == 0:
            return Draft.empty()
        return Draft(tree.token_ids, tree.parents, tree.q)

    def wrap_drafter(self, drafter: TopKDrafter, request: ProposalRequest) -> TopKDrafter:
        """The drafter the tree is built from (a method that samples its children wraps it)."""
        return drafter

    def build_tree(self, drafter: TopKDrafter, budget: int, request: ProposalRequest) -> TokenTree:  # pragma: no cover
        raise NotImplementedError


class _StarProposer(TreeProposer):
    """Drafts the root's ``width`` children (as the base method draws them: top-k, or sampled) and
    counts which rank the target accepted. Its request ids are its own (``profile:...``), so a
    profile measured in the middle of a request leaves that request's draft state alone."""

    def __init__(self, base: TreeProposer, width: int) -> None:
        self.base = base
        self.options = base.options
        self.source = base.source
        self.needs = base.needs
        self.info = base.info
        self.last_tree = None
        self.width = width
        self.counter = ProfileCounter(width)
        self.call_seconds: list[float] = []

    def start_request(self, request_id: str, prompt_ids) -> None:
        self.source.start_request("profile:" + request_id, prompt_ids)

    def finish_request(self, request_id: str) -> None:
        self.source.finish_request("profile:" + request_id)

    def propose(self, request: ProposalRequest) -> Draft:
        import dataclasses

        t0 = time.perf_counter()
        draft = super().propose(dataclasses.replace(request, request_id="profile:" + request.request_id))
        self.call_seconds.append(time.perf_counter() - t0)
        return draft

    def wrap_drafter(self, drafter, request):
        return self.base.wrap_drafter(drafter, request)

    def node_budget(self, request: ProposalRequest) -> int:
        return min(int(request.max_tokens), self.width)

    def build_tree(self, drafter, budget, request):
        n = min(self.width, budget)
        shape = TreeShape(np.full(n, -1), np.arange(n))
        return instantiate_shape(drafter, shape, with_dists=isinstance(drafter, SampledWithoutReplacement))

    def observe(self, feedback: StepFeedback) -> None:
        if len(feedback.draft) == self.width:  # steps cut by the length budget would bias the counts
            self.counter.add(feedback.accepted_nodes[0] if feedback.accepted_nodes else None)


@dataclass(frozen=True)
class ProfileRun:
    """A measured profile and the draft model's time per drafter call while measuring it."""

    profile: AcceptanceProfile
    draft_call_s: float


def measure_profile(proposer: TreeProposer, model, prompts: Sequence[Sequence[int]], width: int = 8,
                    max_new_tokens: int = 48, sampling: SamplingParams | None = None, tokenizer=None,
                    seed: int = 0, verifier=None) -> ProfileRun:
    """The positional acceptance vector of ``proposer``'s source for ``model``: decode ``prompts`` in
    the reference engine with star drafts of ``width`` children drawn as ``proposer`` draws them,
    verified by ``verifier`` (default: the tree verifier) at ``sampling``'s temperature; rank ``i``'s
    acceptance is how often the target accepted it when it was reached (all better ranks rejected).
    Also the median seconds per star draft (one drafter call and the root's sync), the draft's cost per depth."""
    from specplug.engine import ReferenceEngine

    sampling = sampling or SamplingParams()
    engine = ReferenceEngine(model, tokenizer)
    star = _StarProposer(proposer, width)
    engine.generate([list(p) for p in prompts], star, verifier, k=width, max_new_tokens=max_new_tokens,
                    sampling=sampling, seed=seed)
    acceptance = star.counter.acceptance()
    profile = AcceptanceProfile(tuple(float(a) for a in acceptance), target_fingerprint(model), proposer.source.label,
                                float(sampling.temperature), int(star.counter.reached[0]))
    # the median call: a request's first call also runs the draft's prefill of the prompt, which a mean would
    # spread over the per-depth cost the hardware-aware optimiser charges every tree level
    return ProfileRun(profile, float(np.median(star.call_seconds)) if star.call_seconds else 0.0)


def measure_verify_costs(model, sizes: Sequence[int], context: int = 128, repeats: int = 5, seed: int = 0) -> dict[int, float]:
    """Median seconds of one target forward verifying a tree of ``n`` nodes (plus the root) after a
    cached context of ``context`` tokens, for each ``n`` in ``sizes`` (0 = plain decoding's step)."""
    from specplug.kit.target import TargetModel

    target = TargetModel(model)
    vocab = target.vocab_size
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, vocab, size=context).tolist()
    target.forward(prompt, logits_to_keep=1)
    costs: dict[int, float] = {}
    for n in sizes:
        parents = np.arange(n) - 1  # a chain; the mask's shape, not its pattern, sets the cost
        nodes = rng.integers(0, vocab, size=n).tolist()
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            target.forward([nodes[0] if n else 0] + nodes, parents=parents if n else None, logits_to_keep=n + 1)
            times.append(time.perf_counter() - t0)
            target.rollback(context)
        costs[int(n)] = float(np.median(times[1:]))
    return costs


def default_profile_prompts(tokenizer, n: int = 4) -> list[list[int]] | None:
    """Calibration prompts: Spec-Bench questions from the end of the file (benchmarks take each
    category's first ones), or ``None`` without a tokenizer or the file."""
    if tokenizer is None:
        return None
    try:
        from specplug.bench.prompts import spec_bench_path

        rows = [json.loads(line) for line in spec_bench_path().read_text().splitlines() if line.strip()]
    except Exception:
        return None
    prompts = []
    for row in rows[::-1][:n]:
        text = row["turns"][0]
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"][:96])
    return prompts
