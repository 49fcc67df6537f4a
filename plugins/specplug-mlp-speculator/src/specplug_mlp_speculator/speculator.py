"""IBM's MLP speculator (Wertheimer et al., arXiv 2404.19124) in vLLM's ``mlp_speculator`` layout.

Stage ``i`` (``0 .. n_predict - 1``) turns a state and a token into the next state and a guess:

    state_0 = ln0(h_t) / sqrt(2)                     (scale_input: parameter-free L2 norm of the target's state)
    s = proj_i(state_i) + (emb_weight / state_weight) * emb_i(token_i)
    state_{i+1} = GELU(ln_i(s))                      (ln_i: L2 norm with a learned scale and shift)
    logits_i = head_i(state_{i+1})

``h_t`` is the target's final (post-norm) hidden state at position ``t``; ``token_0`` is the token at
``t + 1`` (the one ``h_t`` predicted), ``token_i`` the token stage ``i - 1`` guessed (drafting) or the
true token at ``t + 1 + i`` (training); stage ``i`` guesses the token at ``t + 2 + i``. Every stage
thus depends on the previous stage's state *and* on the token drafted before it (the "combined
token/embedding" of the paper's title). ``state_weight = 0.5 ** (0.5 / n_predict)`` and
``emb_weight = sqrt((1 - state_weight**2) * inner_dim / 2)``, vLLM's and fms-extras' constants.

Parameter names are those vLLM 0.32's ``MLPSpeculator`` loads (``emb.{i}.weight``, ``proj.{i}.weight``,
``ln.{i}.weight|bias``, ``head.{i}.weight``), ``config.json`` its ``MLPSpeculatorConfig``
(``model_type: mlp_speculator``). specplug initialises each stage's embedding and head from the
target's own (the paper trains them from scratch; with ``inner_dim == hidden`` this starts every stage
at a sensible point and trains in minutes on a CPU).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["MLPSpeculatorHead", "ScaledL2Norm"]

SQRT2 = 2**0.5


class ScaledL2Norm(nn.Module):
    """vLLM's ``MLPSpeculatorLayerNorm``: ``x / rms(x)``, then (optionally) a learned scale and shift."""

    def __init__(self, size: int, affine: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(size))
            self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x + self.bias if self.affine else x


class MLPSpeculatorHead(HeadExport, nn.Module):
    """``n_predict`` MLP stages; ``forward(state [N, H], tokens [N, n_predict]) -> logits [n_predict, N, V]``."""

    method = "mlp_speculator"

    def __init__(self, emb_dim: int, vocab_size: int, n_predict: int = 3, inner_dim: int = 0,
                 scale_input: bool = True, top_k_tokens_per_head: list[int] | None = None, n_candidates: int = 5) -> None:
        super().__init__()
        if n_predict < 1:
            raise ValueError(f"the MLP speculator needs at least one stage, got n_predict={n_predict}")
        self.emb_dim, self.vocab_size, self.n_predict = emb_dim, vocab_size, n_predict
        self.inner_dim = inner_dim or emb_dim
        self.scale_input = scale_input
        self.top_k_tokens_per_head = list(top_k_tokens_per_head or [5, 4, 3, 2, 2, 2, 2, 2][:n_predict])
        self.n_candidates = n_candidates
        inner = self.inner_dim
        self.emb = nn.ModuleList([nn.Embedding(vocab_size, inner) for _ in range(n_predict)])
        self.proj = nn.ModuleList([nn.Linear(emb_dim if i == 0 else inner, inner, bias=False) for i in range(n_predict)])
        self.head = nn.ModuleList([nn.Linear(inner, vocab_size, bias=False) for _ in range(n_predict)])
        self.ln = nn.ModuleList([ScaledL2Norm(inner) for _ in range(n_predict)])
        self.ln0 = ScaledL2Norm(emb_dim, affine=False)
        self.state_weight = 0.5 ** (0.5 / n_predict)
        self.emb_weight = math.sqrt((1 - self.state_weight**2) * (inner / 2))
        self.activation = nn.GELU()
        for i in range(n_predict):  # fms-extras' initialisation
            nn.init.normal_(self.emb[i].weight, 0, 1 / math.sqrt(inner))
            nn.init.normal_(self.proj[i].weight, 0, 1 / math.sqrt(inner))
            nn.init.normal_(self.head[i].weight, 0, 1 / math.sqrt(inner))

    @classmethod
    def for_target(cls, target, n_predict: int = 3, **options) -> MLPSpeculatorHead:
        """Stages for ``target``: embeddings and heads initialised from the target's own."""
        lm_head = target.get_output_embeddings().weight.detach()
        embed = target.get_input_embeddings().weight.detach()
        head = cls(int(target.config.hidden_size), int(lm_head.shape[0]), n_predict, **options)
        if head.inner_dim == head.emb_dim:
            with torch.no_grad():
                for i in range(n_predict):
                    head.head[i].weight.copy_(lm_head)
                    head.emb[i].weight.copy_(embed * (1 / math.sqrt(head.inner_dim)) / embed.std().clamp_min(1e-6))
        return head.to(device=lm_head.device, dtype=lm_head.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> MLPSpeculatorHead:
        """An untrained speculator (fms-extras' random init, torch's global generator seeded by the caller)."""
        weight = target.get_output_embeddings().weight
        head = cls(int(target.config.hidden_size), int(weight.shape[0]), n_predict=num_heads)
        return head.to(device=weight.device, dtype=weight.dtype)

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def first_state(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.ln0(hidden) / SQRT2 if self.scale_input else hidden

    def stage(self, i: int, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Stage ``i``'s new state from the previous ``state [..., H]`` and ``tokens [...]``."""
        mixed = self.proj[i](state) + (self.emb_weight / self.state_weight) * self.emb[i](tokens)
        return self.activation(self.ln[i](mixed))

    def forward(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits of every stage, ``[n_predict, ..., V]``: ``tokens[..., i]`` is the token
        stage ``i`` reads (the one at ``t + 1 + i``)."""
        state = self.first_state(hidden)
        out = []
        for i in range(self.n_predict):
            state = self.stage(i, state, tokens[..., i])
            out.append(self.head[i](state))
        return torch.stack(out)

    # -- vLLM format ----------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        return {
            "architectures": ["MLPSpeculatorPreTrainedModel"],
            "model_type": "mlp_speculator",
            "vocab_size": self.vocab_size,
            "emb_dim": self.emb_dim,
            "inner_dim": self.inner_dim,
            "n_predict": self.n_predict,
            "top_k_tokens_per_head": self.top_k_tokens_per_head,
            "n_candidates": self.n_candidates,
            "tie_weights": False,
            "scale_input": self.scale_input,
            "torch_dtype": str(self.head[0].weight.dtype).replace("torch.", ""),
        }

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> MLPSpeculatorHead:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        if config.get("tie_weights"):
            raise ValueError(f"{folder}: tied MLP speculators (tie_weights: true) are not supported; retrain with specplug")
        head = cls(int(config["emb_dim"]), int(config["vocab_size"]), int(config["n_predict"]),
                   int(config.get("inner_dim") or 0), bool(config.get("scale_input", False)),
                   config.get("top_k_tokens_per_head"), int(config.get("n_candidates", 5)))
        head.load_state_dict(load_file(str(folder / "model.safetensors")))
        weight = target.get_output_embeddings().weight
        return head.to(device=weight.device, dtype=weight.dtype)
