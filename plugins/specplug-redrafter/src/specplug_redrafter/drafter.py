"""ReDrafter's recurrent draft head (Cheng et al., arXiv 2403.09919).

The drafter conditions on the target's final (post-norm) hidden state ``h`` of the position before
the root and runs a simple RNN over the tokens it drafts:

    s_1 = SiLU(W e(root) + b)                          (s_0 = 0)
    s_j = SiLU(U s_{j-1} + W e(y_{j-1}) + b)           (y_{j-1}: the token drafted at step j - 1)
    g_j = cat(s_j, h)
    g_j = g_j + SiLU(M_l g_j)   for l = 1 .. num_layers (residual MLP over [2H])
    logits_j = lm_head(P g_j)                          (P: [2H] -> [H]; lm_head starts as the target's)

``e`` is the target's own input embedding (frozen, shared, not saved). Step ``j`` guesses the token
``j`` places after the root. The recurrence is what lets beam search score whole continuations with
one small step per token.

Files: ``config.json`` (``model_type: redrafter``; vLLM has no ReDrafter method) and
``model.safetensors`` with ``rnn_w.weight|bias``, ``rnn_u.weight``, ``mlp.{l}.weight|bias``,
``proj.weight``, ``lm_head.weight``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["ReDrafterHead"]


class ReDrafterHead(HeadExport, nn.Module):
    method = "redrafter"

    def __init__(self, hidden_size: int, vocab_size: int, embed_tokens: nn.Embedding, num_layers: int = 2,
                 draft_length: int = 4, lm_head_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        H = hidden_size
        self.hidden_size, self.vocab_size, self.num_layers, self.draft_length = H, vocab_size, num_layers, draft_length
        self.rnn_w = nn.Linear(H, H)
        self.rnn_u = nn.Linear(H, H, bias=False)
        self.mlp = nn.ModuleList([nn.Linear(2 * H, 2 * H) for _ in range(num_layers)])
        self.proj = nn.Linear(2 * H, H, bias=False)
        self.lm_head = nn.Linear(H, vocab_size, bias=False)
        self.act = nn.SiLU()
        with torch.no_grad():
            for layer in self.mlp:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.proj.weight.zero_()
            self.proj.weight[:, H:] = torch.eye(H)  # start by passing h through: the target's own LM head
            if lm_head_weight is not None:
                self.lm_head.weight.copy_(lm_head_weight)
        self.__dict__["embed_tokens"] = embed_tokens

    @classmethod
    def for_target(cls, target, num_layers: int = 2, draft_length: int = 4) -> ReDrafterHead:
        weight = target.get_output_embeddings().weight.detach()
        head = cls(int(target.config.hidden_size), int(weight.shape[0]), target.get_input_embeddings(), num_layers,
                   draft_length, lm_head_weight=weight)
        return head.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> ReDrafterHead:
        """An untrained drafter for tests, with random recurrence and MLP so that it reads the tokens."""
        head = cls.for_target(target, draft_length=num_heads)
        with torch.no_grad():
            for layer in head.mlp:
                layer.weight.normal_(0, 0.2)
            head.proj.weight.normal_(0, 0.2)
        return head

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def step(self, state: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """The next RNN state from ``state [..., H]`` (``None``: s_0 = 0) and the last tokens ``[...]``."""
        x = self.rnn_w(self.embed_tokens(tokens).to(self.rnn_w.weight.dtype))
        return self.act(x if state is None else x + self.rnn_u(state))

    def logits(self, state: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        g = torch.cat([state, hidden.expand_as(state)], dim=-1)
        for layer in self.mlp:
            g = g + self.act(layer(g))
        return self.lm_head(self.proj(g))

    def forward(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[L, ..., V]``: ``tokens[..., j]`` is the token step ``j`` reads (the root,
        then the true continuation)."""
        state, out = None, []
        for j in range(tokens.shape[-1]):
            state = self.step(state, tokens[..., j])
            out.append(self.logits(state, hidden))
        return torch.stack(out)

    # -- files ------------------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        return {"architectures": ["ReDrafterHead"], "model_type": "redrafter", "hidden_size": self.hidden_size,
                "vocab_size": self.vocab_size, "num_layers": self.num_layers, "draft_length": self.draft_length,
                "torch_dtype": str(self.lm_head.weight.dtype).replace("torch.", "")}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> ReDrafterHead:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        head = cls.for_target(target, int(config["num_layers"]), int(config["draft_length"]))
        head.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        return head
