"""Torch-side pieces every model drafter shares (independent drafts, layer skipping, heads).

The contracts stay in :mod:`specplug.protocols` (no torch); a drafter imports this module lazily,
when it is built, so engine-free code can import its plugin without torch.

- :class:`DraftCache`: a causal LM and its own KV cache, kept in step with the request's committed
  tokens. It reuses :class:`~specplug.kit.target.TargetModel` (cache, rollback), so a draft
  cache rolls back exactly as the target's does: after verification it keeps the longest prefix of
  what it cached that is still committed and feeds only the rest.
- :class:`ReducedVocab`: a draft vocabulary of the ``N`` most frequent target ids, with the rows
  of the LM head that score them and the map back to target ids (EAGLE-3's reduced draft head). A
  small target spends a fifth of its step on its LM head (SmolLM2: 49152 x 576), so a drafter that
  scores the whole vocabulary pays that for every drafted token. The target still verifies against
  its full vocabulary, so output stays lossless; only acceptance can drop.
- :func:`model_view`: a model with some decoder layers skipped and/or a reduced LM head that
  *shares every weight* with the model it views (layer-skip self-drafting never loads a second copy).
- :func:`draft_chain`: k tokens drafted autoregressively, greedy or sampled with ``q`` recorded,
  stopping early when the draft's confidence falls below a threshold (Draft&Verify's adaptive
  draft length).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specplug.kit.target import TargetModel
from specplug.protocols import Draft, SamplingParams
from specplug.verify.sampling import process_logits, sample_token

__all__ = ["DraftCache", "ReducedVocab", "draft_chain", "model_view"]


def _decoder(model) -> nn.Module:
    """The decoder stack of a transformers causal LM (``model.model`` for Llama-style models)."""
    inner = getattr(model, "model", None)
    if inner is None or not isinstance(getattr(inner, "layers", None), nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no .model.layers decoder stack; model drafters need a Llama-style causal LM")
    return inner


def _shallow(module: nn.Module) -> nn.Module:
    """A new module object whose parameters, buffers and children are the original's (no copy of
    any tensor); its own child table, so replacing a child does not touch the original."""
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    return clone


@dataclass(frozen=True)
class ReducedVocab:
    """A draft vocabulary: ``token_ids[j]`` is the target id of draft index ``j`` (sorted ascending)."""

    token_ids: np.ndarray  # [N] int64 target ids
    vocab_size: int  # the target's full vocabulary

    def __post_init__(self) -> None:
        ids = np.unique(np.asarray(self.token_ids, dtype=np.int64).reshape(-1))
        if ids.size == 0:
            raise ValueError("a reduced draft vocabulary needs at least one token")
        if ids[0] < 0 or ids[-1] >= self.vocab_size:
            raise ValueError(f"reduced vocabulary ids must lie in [0, {self.vocab_size})")
        object.__setattr__(self, "token_ids", ids)

    @classmethod
    def most_frequent(cls, sequences: Iterable[Sequence[int]], size: int, vocab_size: int, always: Iterable[int] = ()) -> ReducedVocab:
        """The ``size`` most frequent ids in ``sequences`` (ties: lower id first), plus ``always``
        (special tokens such as EOS, which a draft must be able to propose)."""
        if size < 1:
            raise ValueError(f"draft vocabulary size must be >= 1, got {size}")
        counts = np.zeros(vocab_size, dtype=np.int64)
        for seq in sequences:
            ids = np.asarray(seq, dtype=np.int64).reshape(-1)
            np.add.at(counts, ids[(ids >= 0) & (ids < vocab_size)], 1)
        order = np.lexsort((np.arange(vocab_size), -counts))  # by count desc, then id
        chosen = order[: min(size, vocab_size)]
        chosen = chosen[counts[chosen] > 0] if counts.any() else chosen
        return cls(np.concatenate([chosen, np.asarray(list(always), dtype=np.int64)]), vocab_size)

    def __len__(self) -> int:
        return int(self.token_ids.size)

    def head(self, lm_head_weight: torch.Tensor) -> nn.Linear:
        """An LM head scoring only the draft vocabulary: the rows ``token_ids`` of ``lm_head_weight``
        ([V, hidden]), copied once ([N, hidden]; for N = 8192 and hidden 576, 19 MB in float32)."""
        rows = torch.as_tensor(self.token_ids, device=lm_head_weight.device)
        head = nn.Linear(lm_head_weight.shape[1], len(self), bias=False, device=lm_head_weight.device, dtype=lm_head_weight.dtype)
        with torch.no_grad():
            head.weight.copy_(lm_head_weight.index_select(0, rows))
        head.requires_grad_(False)
        return head

    def to_target(self, draft_index: int) -> int:
        return int(self.token_ids[draft_index])

    def expand(self, probs: torch.Tensor) -> torch.Tensor:
        """Draft-vocabulary probabilities [..., N] as target-vocabulary ones [..., V] (zero elsewhere)."""
        out = probs.new_zeros(*probs.shape[:-1], self.vocab_size)
        out[..., torch.as_tensor(self.token_ids, device=probs.device)] = probs
        return out


def model_view(model, keep_layers: Sequence[int] | None = None, vocab: ReducedVocab | None = None):
    """``model`` running only ``keep_layers`` (in order; ``None``: all) and, with ``vocab``, scoring
    only the reduced vocabulary. Every weight is the original's (a new head holds just the ``N``
    reduced rows). The view has its own config (``num_hidden_layers = len(keep_layers)``) and its
    layers are renumbered, so a :class:`DraftCache` over it keeps its own KV cache."""
    decoder = _decoder(model)
    config = copy.deepcopy(model.config)
    view = _shallow(model)
    inner = _shallow(decoder)
    if keep_layers is not None:
        keep = [int(i) for i in keep_layers]
        total = len(decoder.layers)
        if not keep or len(set(keep)) != len(keep) or min(keep) < 0 or max(keep) >= total:
            raise ValueError(f"layers to keep must be distinct ids in [0, {total}), got {keep}")
        layers = []
        for new_index, old_index in enumerate(keep):
            layer = _shallow(decoder.layers[old_index])
            attn = _shallow(layer.self_attn)
            attn.layer_idx = new_index  # the view's own cache slot
            layer._modules["self_attn"] = attn
            layers.append(layer)
        inner._modules["layers"] = nn.ModuleList(layers)
        config.num_hidden_layers = len(keep)
        if getattr(config, "layer_types", None):
            config.layer_types = [config.layer_types[i] for i in keep]
    inner.config = config
    view._modules["model"] = inner
    view.config = config
    if vocab is not None:
        view._modules["lm_head"] = vocab.head(model.get_output_embeddings().weight)
        # the view's head no longer mirrors the input embeddings: never re-tie it
        config.tie_word_embeddings = False
    return view


class DraftCache:
    """A drafter's causal LM with its own KV cache, in step with one request's committed tokens."""

    def __init__(self, model, vocab: ReducedVocab | None = None) -> None:
        self.model = model
        self.vocab = vocab
        self.lm = TargetModel(model)
        self.tokens: list[int] = []  # tokens whose keys and values the cache holds, in order

    def reset(self) -> None:
        self.lm.reset()
        self.tokens = []

    def sync(self, committed: Sequence[int]) -> torch.Tensor:
        """Logits after the last committed token (the root), [V] or [N] with a reduced head.

        Keeps the longest cached prefix that is still committed (everything up to the first
        rejected draft token) and feeds only the rest, at least the root."""
        committed = [int(t) for t in committed]
        same = 0
        limit = min(len(self.tokens), len(committed) - 1)  # the root is always fed to get its logits
        while same < limit and self.tokens[same] == committed[same]:
            same += 1
        if same < self.lm.cache_len:
            self.lm.rollback(same)
        del self.tokens[same:]
        return self.feed(committed[same:])

    def feed(self, tokens: Sequence[int]) -> torch.Tensor:
        """Append ``tokens`` to the cache; the logits after the last one."""
        logits = self.lm.forward(list(tokens), logits_to_keep=1)[-1]
        self.tokens.extend(int(t) for t in tokens)
        return logits


def draft_chain(
    cache: DraftCache,
    committed: Sequence[int],
    k: int,
    sampling: SamplingParams | None = None,
    generator: torch.Generator | None = None,
    stop_below: float = 0.0,
) -> Draft:
    """Up to ``k`` tokens after ``committed``, one draft forward each.

    Greedy (``sampling`` ``None`` or temperature 0): each token is the draft's argmax, and the draft is
    deterministic (no ``q``). Otherwise each token is sampled from the draft's distribution under the
    same ``sampling`` and ``q`` (target-vocabulary rows) is recorded for speculative sampling.
    ``stop_below``: stop before a position where the draft's confidence, its largest probability
    (after temperature; plain softmax when greedy), is below it. When sampling, the stop decision
    must not look at the sampled token: keeping a token only when its own probability is high would
    draft from ``q`` restricted to its likely tokens while the verifier is told ``q``, which biases
    the output. The largest probability depends on the prefix alone, so stopping on it is exact.
    """
    sampling = sampling or SamplingParams()
    vocab = cache.vocab
    tokens: list[int] = []
    q_rows: list[torch.Tensor] = []
    logits = cache.sync(committed)
    for i in range(k):
        if sampling.greedy:
            index = int(logits.argmax())
            confidence = float(torch.softmax(logits, -1)[index]) if stop_below > 0 else 1.0
        else:
            probs = process_logits(logits[None], sampling)[0]  # [V or N]
            confidence = float(probs.max())
            if confidence < stop_below:
                break
            index = sample_token(probs, generator)
            q_rows.append(probs)
        if confidence < stop_below:
            break
        token = index if vocab is None else vocab.to_target(index)
        tokens.append(token)
        if i + 1 < k:
            logits = cache.feed([token])
    if not tokens:
        return Draft.empty()
    if sampling.greedy:
        return Draft.chain(tokens)
    q = torch.stack(q_rows)  # [n, V or N]
    if vocab is not None:
        q = vocab.expand(q)
    return Draft.chain(tokens, probs=q)
