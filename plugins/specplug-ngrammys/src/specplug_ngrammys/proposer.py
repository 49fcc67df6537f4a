"""The N-Grammys: learning-free drafters, batched, chosen per step.

Stewart, Trager, Gonugondla, Soatto, "The N-Grammys: Accelerating Autoregressive Inference with
Learning-Free Batched Speculation" (arXiv 2411.03786). The paper's observation: the model's next token
is rarely the top guess of a trivial drafter but often among its top few, so proposing *several* cheap
drafts at once and verifying them together pays. The drafters, none trained:

- **context n-grams**: the continuation of the latest earlier occurrence of the last ``n`` tokens
  (``n`` from ``max_ngram`` down to ``min_ngram``) in the request's own text;
- **the model bigram**: the model's top next tokens after each single token, read once from its own
  weights - the token's embedding through the final norm and the unembedding
  (:func:`bigram_table`, ``[V, topk]``, computed once per model and kept in memory).

Each step a batch of up to ``num_drafts`` chains sharing the root is proposed (the reference engine
verifies them as a tree): first the context n-gram draft when the context has a match (continued
by the bigram chain when the copied span runs out), then one chain per bigram top-k token of the root,
each continued greedily by the bigram table. vLLM (level 1, chains) verifies the first chain.

No per-request state: the proposer is stateless (the table is shared and read-only).
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest

__all__ = ["NgrammysOptions", "NgrammysProposer", "bigram_table"]


def bigram_table(embed, unembed, norm_weight, eps: float, topk: int, chunk: int = 2048) -> np.ndarray:
    """``[V, topk]`` int32: for each token, the ``topk`` tokens the model's direct path ranks highest after it:
    ``topk(unembed @ rmsnorm(embed[t]) * norm_weight)``, best first (ties: lower id first).

    One matrix product over the vocabulary in row chunks (torch, float32); read once per model.
    """
    import torch

    embed = torch.as_tensor(embed, dtype=torch.float32)
    unembed = torch.as_tensor(unembed, dtype=torch.float32)
    weight = torch.as_tensor(norm_weight, dtype=torch.float32) if norm_weight is not None else None
    vocab = unembed.shape[0]
    k = min(topk, vocab)
    out = np.empty((embed.shape[0], k), dtype=np.int32)
    with torch.no_grad():
        for start in range(0, embed.shape[0], chunk):
            h = embed[start : start + chunk]
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
            if weight is not None:
                h = h * weight
            logits = h @ unembed.T  # [chunk, V]
            out[start : start + chunk] = torch.topk(logits, k, dim=-1, sorted=True).indices.numpy()
    return out


def cached_bigram_table(embed, unembed, norm_weight, eps: float, topk: int) -> np.ndarray:
    """:func:`bigram_table`, kept on disk under ``$SPECPLUG_CACHE/ngrammys/`` by a fingerprint of the weights
    (a large vocabulary costs minutes of CPU once; every later run reads the file)."""
    import hashlib

    import torch

    from specplug.models import cache_dir

    digest = hashlib.sha1()
    for tensor in (embed, unembed, norm_weight):
        if tensor is not None:
            t = torch.as_tensor(tensor, dtype=torch.float32)
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.reshape(-1)[:: max(1, t.numel() // 4096)].numpy().tobytes())
    path = cache_dir() / "ngrammys" / f"{digest.hexdigest()[:20]}-eps{eps:g}-top{topk}.npy"
    if path.exists():
        return np.load(path)
    table = bigram_table(embed, unembed, norm_weight, eps, topk)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, table)
    os.replace(tmp, path)
    return table


def _weights_of(model):
    """``(embed, unembed, norm weight, eps)`` of a transformers causal LM (Llama-style final RMSNorm)."""
    embed = model.get_input_embeddings().weight.detach()
    unembed = model.get_output_embeddings().weight.detach()
    norm = getattr(getattr(model, "model", model), "norm", None)
    if norm is None or not hasattr(norm, "weight"):
        raise ValueError(f"ngrammys reads the model's final norm (model.model.norm), which {type(model).__name__} lacks")
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    return embed, unembed, norm.weight.detach(), eps


_TABLES: dict[tuple[str, int], np.ndarray] = {}


def _table_for_model_path(name: str, topk: int) -> np.ndarray:
    """The bigram table of a model given by name or folder (loaded once per process)."""
    key = (name, topk)
    if key not in _TABLES:
        from transformers import AutoModelForCausalLM

        from specplug.models import resolve_model

        model = AutoModelForCausalLM.from_pretrained(resolve_model(name), torch_dtype="float32")
        _TABLES[key] = cached_bigram_table(*_weights_of(model), topk)
    return _TABLES[key]


@njit(cache=True, nogil=True)
def _context_match(tokens, n, min_ngram, max_ngram):  # pragma: no cover - compiled
    """Start of the continuation of the latest earlier occurrence of the longest suffix n-gram, or -1."""
    last = tokens[n - 1]
    best_len, best_start = 0, -1
    for start in range(1, n):
        if tokens[start - 1] != last:
            continue
        length = 1
        while length < max_ngram and start - 1 - length >= 0 and tokens[start - 1 - length] == tokens[n - 1 - length]:
            length += 1
        if length >= best_len:
            best_len, best_start = length, start
    if best_len < min_ngram:
        return -1
    return best_start


@njit(cache=True, nogil=True)
def _first_chain(tokens, n, table, min_ngram, max_ngram, limit, out):  # pragma: no cover - compiled
    """The first draft: the context n-gram continuation (then the bigram chain), else the bigram chain of
    the root's top token. Returns its length."""
    if limit <= 0 or n <= 0:
        return 0
    count = 0
    start = _context_match(tokens, n, min_ngram, max_ngram) if n >= 2 else -1
    if start >= 0:
        while count < limit and start + count < n:
            out[count] = tokens[start + count]
            count += 1
    prev = out[count - 1] if count > 0 else tokens[n - 1]
    while count < limit and table.shape[0] > 0:
        if prev < 0 or prev >= table.shape[0]:
            break
        prev = table[prev, 0]
        out[count] = prev
        count += 1
    return count


@njit(cache=True, nogil=True)
def _first_chain_rows(token_ids, lengths, max_tokens, table, min_ngram, max_ngram, out, counts):  # pragma: no cover
    for row in range(token_ids.shape[0]):
        if max_tokens[row] > 0:
            counts[row] = _first_chain(token_ids[row], lengths[row], table, min_ngram, max_ngram, max_tokens[row], out[row])


class NgrammysOptions(MethodOptions):
    """Options of ``ngrammys``."""

    num_drafts: int = Field(4, ge=1, le=64, description="Chains proposed per step (the paper's batch of drafts).")
    topk: int = Field(8, ge=1, le=256, description="Next tokens kept per token in the model bigram table.")
    min_ngram: int = Field(1, ge=1, description="Shortest context n-gram that may match.")
    max_ngram: int = Field(3, ge=1, description="Longest context n-gram tried.")
    model: str | None = Field(
        None, description="Model (name or folder) whose weights give the bigram table where the engine does not hand "
        "its model over (vLLM); the reference engine uses its own target."
    )

    @model_validator(mode="after")
    def _check_range(self) -> NgrammysOptions:
        if self.max_ngram < self.min_ngram:
            raise ValueError(f"max_ngram ({self.max_ngram}) must be >= min_ngram ({self.min_ngram})")
        return self


class NgrammysProposer(BaseProposer):
    """The N-Grammys (see the module docstring); stateless, with a batched first-chain path for vLLM."""

    stateless = True

    def __init__(self, options: NgrammysOptions | None = None):
        self.options = options or NgrammysOptions()
        self.table: np.ndarray | None = None
        if self.options.model is not None:
            self.table = _table_for_model_path(self.options.model, self.options.topk)

    def bind_target(self, info) -> None:
        """Read the bigram table from the engine's own target (once per target)."""
        if info.model is not None and getattr(self, "_bound_model", None) is not info.model:
            self.table = cached_bigram_table(*_weights_of(info.model), self.options.topk)
            self._bound_model = info.model

    def _need_table(self) -> np.ndarray:
        if self.table is None:
            raise ValueError("ngrammys needs the model's bigram table: run it in an engine that hands over its target "
                             "(specplug's reference engine) or pass the option model=<name or folder> (vLLM)")
        return self.table

    def propose(self, request: ProposalRequest) -> Draft:
        table, o = self._need_table(), self.options
        tokens = np.ascontiguousarray(request.token_ids, dtype=np.int32)
        n, limit = tokens.shape[0], request.max_tokens
        if limit <= 0 or n == 0:
            return Draft.empty()
        out = np.empty(limit, dtype=np.int32)
        chains = []
        count = _first_chain(tokens, n, table, o.min_ngram, o.max_ngram, limit, out)
        if count:
            chains.append(out[:count].tolist())
        root = int(tokens[-1])
        if 0 <= root < table.shape[0]:
            for first in table[root].tolist():
                if len(chains) >= o.num_drafts:
                    break
                chain = [first]
                while len(chain) < limit:
                    chain.append(int(table[chain[-1], 0]))
                if chain not in chains:
                    chains.append(chain)
        return _tree(chains)

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        table, o = self._need_table(), self.options
        counts = np.zeros(token_ids.shape[0], dtype=np.int32)
        _first_chain_rows(token_ids, np.asarray(lengths, dtype=np.int64), np.asarray(max_tokens, dtype=np.int64), table,
                          o.min_ngram, o.max_ngram, out, counts)
        return counts


def _tree(chains: list[list[int]]) -> Draft:
    """Chains sharing the root merged into a prefix tree, in order (the first chain is the tree's first chain)."""
    tokens: list[int] = []
    parents: list[int] = []
    children: dict[tuple[int, int], int] = {}
    for chain in chains:
        node = -1
        for t in chain:
            key = (node, t)
            if key not in children:
                children[key] = len(tokens)
                tokens.append(t)
                parents.append(node)
            node = children[key]
    return Draft(np.array(tokens, dtype=np.int64), np.array(parents, dtype=np.int64))
