"""A transformers causal LM with one request's KV cache, tree attention and rollback.

:class:`TargetModel` is the low-level piece the reference engine (and custom decoding loops such as
Lookahead's) drive:

- ``forward(input_ids, position_ids=None, attention_bias=None, parents=None, logits_to_keep=0)``
  appends ``n`` tokens to the cache and returns their logits ``[n, V]`` (float32);
  ``forward_with_states(..., hidden_layers=...)`` also returns their hidden states at the given
  layers ``[n, num_layers, hidden]`` (layer ids as in :data:`specplug.protocols.FINAL_HIDDEN_STATE`);
- ``rollback(keep_len)`` drops every cached position from ``keep_len`` on;
- ``keep(positions)`` compacts the cache to the given positions (a tree's accepted path);
- ``reset()`` forgets the request.

Attention for a tree: a 4D additive mask (0 = attend, dtype min = blocked) of shape
``[1, 1, n, past + n]`` where every new token sees the whole cache, the new tokens before the first
draft node causally, and a draft node only its ancestors and itself. Position ids give each node
its depth, so siblings share a position.

Models with sliding-window or linear-attention layers are not supported (their caches cannot be
rolled back by slicing); :class:`TargetModel` refuses them at construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["TargetModel", "causal_bias", "tree_bias", "tree_positions"]


def tree_positions(start: int, num_pending: int, parents: np.ndarray | None, num_nodes: int) -> torch.Tensor:
    """Position ids [num_pending + num_nodes]: pending tokens at ``start, start + 1, ...``; a node at
    ``root_position + depth`` where the root is the last pending token."""
    pos = list(range(start, start + num_pending))
    root = start + num_pending - 1
    if parents is None:
        pos += [root + 1 + i for i in range(num_nodes)]
    else:
        depth: list[int] = []
        for p in parents.tolist():
            depth.append(1 if p < 0 else depth[p] + 1)
        pos += [root + d for d in depth]
    return torch.tensor(pos, dtype=torch.long)


def causal_bias(past: int, n: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Additive causal bias [n, past + n]."""
    blocked = torch.finfo(dtype).min
    allow = torch.ones(n, past + n, dtype=torch.bool, device=device).tril(diagonal=past)
    return torch.zeros(n, past + n, dtype=dtype, device=device).masked_fill(~allow, blocked)


def tree_bias(past: int, num_pending: int, parents: np.ndarray, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Additive bias [num_pending + num_nodes, past + num_pending + num_nodes] for pending tokens
    (causal) followed by draft nodes whose ``parents`` index other nodes (-1 = the last pending token)."""
    num_nodes = len(parents)
    n = num_pending + num_nodes
    allow = torch.zeros(n, past + n, dtype=torch.bool)
    allow[:, :past] = True
    allow[:num_pending, past : past + num_pending] = torch.ones(num_pending, num_pending, dtype=torch.bool).tril()
    allow[num_pending:, past : past + num_pending] = True  # every node sees all pending tokens
    base = past + num_pending
    for i, p in enumerate(parents.tolist()):
        row = num_pending + i
        allow[row, base + i] = True
        if p >= 0:
            allow[row, base : base + num_nodes] |= allow[num_pending + p, base : base + num_nodes]
    blocked = torch.finfo(dtype).min
    return torch.zeros(n, past + n, dtype=dtype).masked_fill(~allow, blocked).to(device)


class TargetModel:
    """One causal LM plus the KV cache of the request being decoded (one request at a time)."""

    def __init__(self, model) -> None:
        from transformers import DynamicCache

        self.model = model
        self._cache_cls = DynamicCache
        config = model.config
        if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
            layer_types = set(getattr(config, "layer_types", None) or [])
            if "sliding_attention" in layer_types:
                raise ValueError(
                    f"{type(model).__name__} uses sliding-window attention, whose KV cache the reference engine "
                    "cannot roll back; use a full-attention model (Llama, Qwen2, ...)"
                )
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.max_positions = int(getattr(config, "max_position_embeddings", 0) or 0) or None
        self.cache = None
        self.reset()

    # -- cache ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the cached request."""
        self.cache = self._cache_cls(config=self.model.config)

    @property
    def cache_len(self) -> int:
        return int(self.cache.get_seq_length()) if self.cache is not None else 0

    def _layers(self):
        layers = getattr(self.cache, "layers", None)
        if layers is None:
            raise RuntimeError("this transformers version's cache has no .layers; the reference engine needs transformers>=4.56")
        return [layer for layer in layers if getattr(layer, "keys", None) is not None and layer.keys.numel() > 0]

    def rollback(self, keep_len: int) -> None:
        """Drop cached positions ``keep_len`` and later (rejected draft tokens)."""
        if keep_len < 0 or keep_len > self.cache_len:
            raise ValueError(f"cannot roll back to {keep_len}: the cache holds {self.cache_len} positions")
        for layer in self._layers():
            layer.keys = layer.keys[..., :keep_len, :]
            layer.values = layer.values[..., :keep_len, :]

    def keep(self, positions: Sequence[int]) -> None:
        """Keep only the given cache positions, in order (compacts a tree's accepted path)."""
        index = torch.as_tensor(list(positions), dtype=torch.long, device=self.device)
        for layer in self._layers():
            layer.keys = layer.keys.index_select(-2, index)
            layer.values = layer.values.index_select(-2, index)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, input_ids, position_ids=None, attention_bias=None, parents=None, logits_to_keep: int = 0) -> torch.Tensor:
        """Append ``n`` tokens to the cache and return their logits, float32 ``[n or logits_to_keep, V]``.

        With ``parents`` the last ``len(parents)`` inputs are draft nodes (``parents[i] = -1``: child of
        the last token before them) and get tree positions and a tree mask; other inputs are causal.
        """
        return self._run(input_ids, position_ids, attention_bias, parents, logits_to_keep, None)[0]

    def forward_with_states(
        self, input_ids, hidden_layers: Sequence[int], position_ids=None, attention_bias=None, parents=None, logits_to_keep: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`, plus the hidden states of all ``n`` inputs at ``hidden_layers``:
        ``[n, len(hidden_layers), hidden]`` in the model's dtype. Layer id ``i`` is the residual
        stream entering decoder layer ``i``; ``-1`` the final state after the last norm."""
        num_layers = int(self.model.config.num_hidden_layers)
        for layer in hidden_layers:
            if not (layer == -1 or 0 <= layer < num_layers):
                raise ValueError(f"hidden state layer {layer} does not exist: use -1 (final) or 0..{num_layers - 1}")
        logits, states = self._run(input_ids, position_ids, attention_bias, parents, logits_to_keep, tuple(hidden_layers))
        return logits, states

    @torch.inference_mode()
    def _run(
        self,
        input_ids: Sequence[int] | torch.Tensor,  # [n] or [1, n]
        position_ids: torch.Tensor | None = None,  # [n] or [1, n]; default: cache_len + arange(n)
        attention_bias: torch.Tensor | None = None,  # [n, past + n] additive; default: causal
        parents: np.ndarray | None = None,  # alternative to attention_bias: the last len(parents) tokens are a tree
        logits_to_keep: int = 0,  # 0 = all rows
        hidden_layers: tuple[int, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(1, -1).to(self.device)  # [1, n]
        n = ids.shape[1]
        past = self.cache_len
        if self.max_positions is not None and past + n > self.max_positions:
            raise ValueError(f"sequence of {past + n} tokens exceeds the model's {self.max_positions} positions")
        mask = None
        if parents is not None:
            parents = np.asarray(parents, dtype=np.int64)
            pending = n - len(parents)
            if pending < 1:
                raise ValueError("a tree forward needs at least one token before the draft nodes (the root)")
            if position_ids is None:
                position_ids = tree_positions(past, pending, parents, len(parents))
            if attention_bias is None:
                attention_bias = tree_bias(past, pending, parents, self.dtype, self.device)
        if position_ids is None:
            position_ids = torch.arange(past, past + n, dtype=torch.long)
        position_ids = torch.as_tensor(position_ids, dtype=torch.long).reshape(1, -1).to(self.device)  # [1, n]
        if attention_bias is not None:
            if tuple(attention_bias.shape) != (n, past + n):
                raise ValueError(f"attention_bias must be [{n}, {past + n}], got {tuple(attention_bias.shape)}")
            mask = attention_bias.to(device=self.device, dtype=self.dtype)[None, None]  # [1, 1, n, past + n]
        out = self.model(
            input_ids=ids,
            position_ids=position_ids,
            attention_mask=mask,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=logits_to_keep,
            output_hidden_states=hidden_layers is not None,
        )
        self.cache = out.past_key_values
        states = None
        if hidden_layers is not None:
            # out.hidden_states: num_layers + 1 tensors [1, n, hidden]; [i] enters layer i, [-1] is post-norm
            states = torch.stack([out.hidden_states[layer][0] for layer in hidden_layers], dim=1)  # [n, L, hidden]
        return out.logits[0].float(), states  # [n or logits_to_keep, V], [n, L, hidden] | None
