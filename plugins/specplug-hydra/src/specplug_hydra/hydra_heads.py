"""Hydra heads (Ankner et al., arXiv 2402.05109): Medusa's draft heads made sequentially dependent.

Head ``k`` (0-based) reads the target's final (post-norm) hidden state ``h_t`` *and the input
embeddings of every token of the candidate continuation before the one it guesses*, and guesses the
token at ``t + 2 + k``:

    x = cat(h_t, E(x[t + 1]), ..., E(x[t + 1 + k]))               [(k + 2) H]
    z = h_t + SiLU(W_in x)                                         (the first layer, residual on h_t)
    z = z + SiLU(W_j z)   for j = 1 .. num_layers - 1              (Hydra++: 4 layers in all)
    logits = lm_head_k(z)

``x[t + 1]`` is the token ``h_t`` predicted (the root in decoding); the later ones are the tokens
drafted by the earlier heads (decoding) or the true ones (training). ``E`` is the target's own input
embedding (frozen, shared, not saved); each head's LM head starts as the target's, and ``W_in`` starts
at zero, so an untrained head is the target's LM head on ``h_t``. Medusa's heads see only ``h_t``:
the sequential dependence is what lets Hydra's later heads know which branch of the tree they extend.

Files: ``config.json`` (``model_type: hydra``; vLLM has no Hydra method) and ``model.safetensors``
with ``heads.{k}.w_in.weight|bias``, ``heads.{k}.layers.{j}.weight|bias``, ``heads.{k}.lm_head.weight``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["HydraHead", "HydraHeads"]


class HydraHead(nn.Module):
    """One Hydra head: ``forward(hidden [..., H], token_embeds [..., k + 1, H]) -> logits [..., V]``."""

    def __init__(self, hidden: int, vocab: int, position: int, num_layers: int) -> None:
        super().__init__()
        self.w_in = nn.Linear((position + 2) * hidden, hidden)
        self.layers = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(num_layers - 1)])
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        self.act = nn.SiLU()
        for layer in [self.w_in, *self.layers]:  # start as the identity on h_t, as Medusa's blocks do
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def state(self, hidden: torch.Tensor, token_embeds: torch.Tensor) -> torch.Tensor:
        x = torch.cat([hidden, token_embeds.flatten(-2)], dim=-1)
        z = hidden + self.act(self.w_in(x))
        for layer in self.layers:
            z = z + self.act(layer(z))
        return z

    def forward(self, hidden: torch.Tensor, token_embeds: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.state(hidden, token_embeds))


class HydraHeads(HeadExport, nn.Module):
    """``num_heads`` Hydra heads sharing the target's input embeddings."""

    method = "hydra"

    def __init__(self, hidden_size: int, vocab_size: int, embed_tokens: nn.Embedding, num_heads: int = 4,
                 num_layers: int = 4, lm_head_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if num_heads < 1 or num_layers < 1:
            raise ValueError(f"Hydra needs at least one head and one layer per head, got {num_heads} heads, {num_layers} layers")
        self.hidden_size, self.vocab_size = hidden_size, vocab_size
        self.num_heads, self.num_layers = num_heads, num_layers
        self.heads = nn.ModuleList([HydraHead(hidden_size, vocab_size, k, num_layers) for k in range(num_heads)])
        if lm_head_weight is not None:
            with torch.no_grad():
                for head in self.heads:
                    head.lm_head.weight.copy_(lm_head_weight)
        self.__dict__["embed_tokens"] = embed_tokens  # the target's: neither trained nor saved

    @classmethod
    def for_target(cls, target, num_heads: int = 4, num_layers: int = 4) -> HydraHeads:
        weight = target.get_output_embeddings().weight.detach()
        heads = cls(int(target.config.hidden_size), int(weight.shape[0]), target.get_input_embeddings(), num_heads,
                    num_layers, lm_head_weight=weight)
        return heads.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> HydraHeads:
        """Untrained heads for tests: random input layers, so the heads read the drafted tokens."""
        heads = cls.for_target(target, num_heads=num_heads, num_layers=2)
        with torch.no_grad():
            for head in heads.heads:
                head.w_in.weight.normal_(0, 0.3)
                for layer in head.layers:
                    layer.weight.normal_(0, 0.3)
        return heads

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(tokens).to(self.heads[0].lm_head.weight.dtype)

    def head_logits(self, k: int, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Head ``k``'s logits: ``hidden [..., H]``, ``tokens [..., k + 1]`` (tokens ``t + 1 .. t + 1 + k``)."""
        return self.heads[k](hidden, self.embed(tokens))

    def forward(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits of every head, ``[K, ..., V]``; ``tokens [..., K]``: tokens ``t + 1 .. t + K``."""
        embeds = self.embed(tokens)
        return torch.stack([head(hidden, embeds[..., : k + 1, :]) for k, head in enumerate(self.heads)])

    # -- files ------------------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        """``config.json`` (vLLM has no Hydra method; the same file layout as the other heads)."""
        return {"architectures": ["HydraHeads"], "model_type": "hydra", "hidden_size": self.hidden_size,
                "vocab_size": self.vocab_size, "num_heads": self.num_heads, "num_layers": self.num_layers,
                "torch_dtype": str(self.heads[0].lm_head.weight.dtype).replace("torch.", "")}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> HydraHeads:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        heads = cls(int(config["hidden_size"]), int(config["vocab_size"]), target.get_input_embeddings(),
                    int(config["num_heads"]), int(config["num_layers"]))
        heads.load_state_dict(load_file(str(folder / "model.safetensors")))
        weight = target.get_output_embeddings().weight
        return heads.to(device=weight.device, dtype=weight.dtype)
