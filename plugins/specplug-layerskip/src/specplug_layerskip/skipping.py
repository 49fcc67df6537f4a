"""The draft model: the target with some attention and MLP blocks skipped, sharing every weight.

:func:`skip_view` builds on :func:`specplug.kit.drafting.model_view` (which drops whole layers
and can swap in a reduced LM head) and replaces the layers that keep only one of their two blocks by
:class:`PartialLayer`, which runs that block with its residual connection. The view keeps its own KV
cache slots: the kept attention blocks are renumbered ``0..A-1``.

:func:`draft_cost` is the cost model the search uses: multiply-adds per drafted token relative to
one full target step (hardware-independent; see the plugin README for why this and not timings).
"""

from __future__ import annotations

import torch
from torch import nn

from specplug.kit.drafting import ReducedVocab, model_view
from specplug_layerskip.profile import SkipSet

__all__ = ["PartialLayer", "draft_cost", "skip_view", "unit_costs"]


class PartialLayer(nn.Module):
    """One decoder layer running only its attention block or only its MLP block.

    Holds the original layer's sub-modules (no copy): ``h + attn(norm(h))`` or ``h + mlp(norm(h))``."""

    def __init__(self, layer: nn.Module, attention: bool, mlp: bool) -> None:
        super().__init__()
        if attention == mlp:
            raise ValueError("a partial layer runs exactly one of its two blocks")
        self.run_attention = attention
        if attention:
            self.input_layernorm = layer.input_layernorm
            self.self_attn = layer.self_attn
        else:
            self.post_attention_layernorm = layer.post_attention_layernorm
            self.mlp = layer.mlp

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.run_attention:
            attended, _ = self.self_attn(hidden_states=self.input_layernorm(hidden_states), **kwargs)
            return hidden_states + attended
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


def skip_view(model, skip: SkipSet, vocab: ReducedVocab | None = None):
    """``model`` with the blocks in ``skip`` skipped (and, with ``vocab``, a reduced LM head).

    Every weight is ``model``'s own (the reduced head copies its ``N`` rows once); ``model`` itself
    is not changed. Layers whose two blocks are both skipped are dropped."""
    num_layers = int(model.config.num_hidden_layers)
    skip.check(num_layers)
    attention, mlp = set(skip.attention), set(skip.mlp)
    keep = [i for i in range(num_layers) if not (i in attention and i in mlp)]
    view = model_view(model, keep_layers=keep, vocab=vocab)
    layers = view.model.layers  # the view's own ModuleList of shallow layer copies
    slot = 0
    for position, original in enumerate(keep):
        layer = layers[position]
        if original in attention:  # MLP only: no KV cache slot
            layers[position] = PartialLayer(layer, attention=False, mlp=True)
            continue
        layer.self_attn.layer_idx = slot  # the view's own renumbered copy (model_view made it)
        slot += 1
        if original in mlp:
            layers[position] = PartialLayer(layer, attention=True, mlp=False)
    return view


def unit_costs(config, draft_vocab: int | None = None) -> tuple[float, float, float]:
    """Multiply-adds per token of one attention block, one MLP block and the LM head."""
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2  # q, o; k, v
    mlp = 3 * hidden * int(config.intermediate_size)  # gate, up, down
    head = hidden * int(draft_vocab or config.vocab_size)
    return float(attention), float(mlp), float(head)


def draft_cost(config, skip: SkipSet, draft_vocab: int | None = None) -> float:
    """Multiply-adds of one drafted token over those of one full target token (0..1]."""
    num_layers = int(config.num_hidden_layers)
    attention, mlp, head = unit_costs(config)
    _, _, draft_head = unit_costs(config, draft_vocab)
    full = num_layers * (attention + mlp) + head
    draft = (num_layers - len(skip.attention)) * attention + (num_layers - len(skip.mlp)) * mlp + draft_head
    return draft / full
