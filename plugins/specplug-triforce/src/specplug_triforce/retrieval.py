"""TriForce's retrieval cache: the target's own weights over the prompt's most relevant KV chunks.

TriForce (arXiv 2404.11912, section 4.1, "retrieval-based drafting") observes that attention at long
context is sparse and that the positions a query needs are clustered (contextual locality). So the
middle model of its hierarchy is the target itself over a *retrieved* part of its KV cache:

1. the prompt's cache is cut into chunks of ``chunk_size`` consecutive positions;
2. each chunk is scored, per layer and per KV head, by the attention logit of the current query
   against the chunk's mean key (``q . mean(k)``, which by linearity is the chunk's mean logit);
3. the top-scoring chunks are kept within the KV budget (the first chunk always, as the authors'
   code keeps it: it holds the attention sinks), each head its own;
4. the selection is made once, after prefill, with the query of the last prompt token (the authors'
   on-chip engine builds it there, from the full cache), and reused while decoding; tokens committed
   later are kept after it in full.

With grouped-query attention (SmolLM2: 9 query heads share 3 KV heads) a KV head's score is the mean
of its query heads' scores, so one selection serves the group.

Cache entries hold keys after RoPE, so a retrieved entry keeps its true position; new tokens are fed
at their true positions. The cache is the proposer's own: the engine's full cache is never touched.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from specplug.kit.sparse_kv import PREFILL_CHUNK, common_prefix

__all__ = ["RetrievalCache", "chunk_scores", "retrieved_positions", "select_chunks"]


def chunk_scores(query: torch.Tensor, keys: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Scores [kv_heads, num_chunks] of the whole chunks of ``keys`` against ``query``.

    ``query``: [heads, head_dim] (one position, after RoPE); ``keys``: [kv_heads, length, head_dim]
    (after RoPE). Chunk ``j`` covers positions ``j * chunk_size .. (j + 1) * chunk_size - 1``; a
    trailing partial chunk is not scored. A KV head's score is the mean over its group of query heads.
    """
    kv_heads, length, dim = keys.shape
    chunks = length // chunk_size
    means = keys[:, : chunks * chunk_size].reshape(kv_heads, chunks, chunk_size, dim).float().mean(2)  # [kvh, n, d]
    grouped = query.float().reshape(kv_heads, -1, dim)  # [kvh, group, d]
    return torch.einsum("kgd,knd->kgn", grouped, means).mean(1)  # [kvh, n]


def select_chunks(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Chunk ids [kv_heads, count] per head, ascending: chunk 0 and the ``count - 1`` best-scoring others."""
    kv_heads, chunks = scores.shape
    if count >= chunks:
        return torch.arange(chunks).expand(kv_heads, chunks).clone()
    first = torch.zeros(kv_heads, 1, dtype=torch.long)
    if count == 1:
        return first
    best = torch.topk(scores[:, 1:], count - 1, dim=-1).indices + 1
    return torch.cat([first, best], dim=-1).sort(dim=-1).values


def retrieved_positions(selected: torch.Tensor, chunk_size: int, length: int) -> torch.Tensor:
    """Cache positions [kv_heads, m] kept per head: the selected chunks' positions, then the trailing
    partial chunk (``length mod chunk_size`` positions, the most recent ones, always kept)."""
    offsets = torch.arange(chunk_size)
    positions = (selected[:, :, None] * chunk_size + offsets).reshape(selected.shape[0], -1)
    tail = torch.arange((length // chunk_size) * chunk_size, length)
    return torch.cat([positions, tail.expand(selected.shape[0], -1)], dim=-1)


def _capture_last_queries(model, store: dict[int, torch.Tensor]) -> list:
    """Hooks that record, per decoder layer, the query of the last input position after RoPE [heads, d]."""
    handles = []
    for index, layer in enumerate(model.model.layers):
        attn = layer.self_attn
        rotate = getattr(sys.modules[type(attn).__module__], "apply_rotary_pos_emb", None)
        if rotate is None:
            raise TypeError(f"{type(attn).__name__} has no apply_rotary_pos_emb: TriForce's retrieval needs a RoPE "
                            "attention (Llama, Qwen2, ...)")

        def hook(module, args, kwargs, index=index, rotate=rotate):
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]  # [1, n, hidden], normalised
            cos, sin = kwargs["position_embeddings"]
            q = module.q_proj(hidden[:, -1:]).view(1, 1, -1, module.head_dim).transpose(1, 2)  # [1, H, 1, d]
            q, _ = rotate(q, q, cos[:, -1:], sin[:, -1:])
            store[index] = q[0, :, 0].detach()

        handles.append(attn.register_forward_pre_hook(hook, with_kwargs=True))
    return handles


class RetrievalCache:
    """The target over a retrieval cache of one request (see the module docstring).

    After :meth:`build`, the cache holds the retrieved part of ``prompt[:-1]`` (``base`` entries), then
    one entry per token of ``tokens[len(prompt) - 1:]`` at its true position. :meth:`sync` rolls back
    to the longest prefix of ``tokens`` the committed text still starts with and returns the tokens to
    feed; :meth:`forward` runs tokens over the cache; :meth:`keep` keeps the first of them.
    """

    def __init__(self, model, budget: int, chunk_size: int) -> None:
        from specplug.kit.target import TargetModel

        self.model = model
        self.lm = TargetModel(model)
        self.budget, self.chunk_size = budget, chunk_size
        self.tokens: list[int] = []  # text whose keys and values the cache holds (retrieved or not)
        self.prompt_len = 0
        self.base = 0  # cache entries of the retrieved prompt region
        self.selected: list[torch.Tensor] = []  # per layer: chunk ids [kv_heads, count] (empty: all kept)
        self.queries: dict[int, torch.Tensor] = {}  # per layer: the query that chose them [heads, d]

    def build(self, prompt: Sequence[int]) -> None:
        """Prefill ``prompt[:-1]`` with full attention, run the root for its query, keep the top chunks."""
        prompt = [int(t) for t in prompt]
        self.lm.reset()
        self.prompt_len, self.selected, self.queries = len(prompt), [], {}
        context = prompt[:-1]
        for i in range(0, len(context), PREFILL_CHUNK):
            self.lm.forward(context[i : i + PREFILL_CHUNK], logits_to_keep=1)
        length = len(context)
        tail = length % self.chunk_size
        count = max((self.budget - tail) // self.chunk_size, 1)
        if length > self.budget:
            handles = _capture_last_queries(self.model, self.queries)
            try:
                self.lm.forward(prompt[-1:], logits_to_keep=1)  # the root over the full cache: its query
            finally:
                for handle in handles:
                    handle.remove()
            self.lm.rollback(length)
            for index, layer in enumerate(self.lm._layers()):
                keys = layer.keys[0]  # [kvh, length, d]
                chosen = select_chunks(chunk_scores(self.queries[index], keys, self.chunk_size), count)
                positions = retrieved_positions(chosen, self.chunk_size, length).to(keys.device)  # [kvh, m]
                gather = positions[None, :, :, None].expand(1, -1, -1, keys.shape[-1])
                layer.keys = layer.keys.gather(2, gather)
                layer.values = layer.values.gather(2, gather)
                self.selected.append(chosen)
        self.base = self.lm.cache_len
        self.tokens = context

    def sync(self, committed: Sequence[int], num_prompt: int) -> list[int]:
        """Roll back to what ``committed`` still starts with; the tokens to feed next (at least the root)."""
        committed = [int(t) for t in committed]
        if self.prompt_len != num_prompt or self.tokens[: num_prompt - 1] != committed[: num_prompt - 1] or not self.prompt_len:
            self.build(committed[:num_prompt])
        same = common_prefix(self.tokens, committed, len(committed) - 1)
        if same < len(self.tokens):
            self.lm.rollback(self.base + same - (self.prompt_len - 1))
            del self.tokens[same:]
        return committed[same:]

    def forward(self, tokens: Sequence[int], logits_to_keep: int) -> torch.Tensor:
        """Logits [logits_to_keep, V] of the last inputs; ``tokens`` enter the cache at their true positions."""
        start = len(self.tokens)
        return self.lm.forward(list(tokens), position_ids=torch.arange(start, start + len(tokens)), logits_to_keep=logits_to_keep)

    def keep(self, tokens: Sequence[int], kept: int) -> None:
        """After :meth:`forward` of ``tokens``: keep the first ``kept`` of them, drop the rest."""
        self.lm.rollback(self.lm.cache_len - (len(tokens) - kept))
        self.tokens.extend(int(t) for t in tokens[:kept])
