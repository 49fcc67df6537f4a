"""Amphista's drafting heads (Li et al., arXiv 2406.13170): Medusa's heads made to talk to each other.

From the target's final (post-norm) hidden states ``h`` of the context and the tokens after them:

    a_t  = W_fuse cat(h_t, E(x[t + 1]))          sampled token integration: the token the target just
                                                 produced joins its feature (root: x[t + 1])
    s1   = AdaptLayer1(a)                         staged adaptation layers: two causal decoder layers
    s2   = AdaptLayer2(s1)                        over the context (stage 1, then stage 2)
    u_k  = s_t + SiLU(W_k s_t)                    head k's MLP (Medusa's residual block), reading stage 1
                                                  (heads 0 .. ceil(K/2) - 1) or stage 2 (the later heads)
    o    = Encoder(cat_k(u_k) + PE)               the Auto-embedding Block: the K head states as a
                                                  sequence, a learned position embedding, one Transformer
                                                  encoder layer with BI-DIRECTIONAL self-attention
    logits_k = lm_head(o_k)                       head k guesses token t + 2 + k

So every head's guess depends on every other head's state (the bi-directional attention), while the
K guesses still come from one parallel call (non-autoregressive). Untrained, the heads are the target's LM
head on ``h_t`` (Medusa's start: every residual branch begins at zero). The adaptation layers are the
target's decoder-layer shape (a Llama layer each); ``lm_head`` and ``E`` are the target's, shared and
frozen (neither trained nor saved).

Files: ``config.json`` (``model_type: amphista``; vLLM has no Amphista method) and ``model.safetensors``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport, draft_llama_config

__all__ = ["AmphistaHeads", "stage_of"]


def stage_of(k: int, num_heads: int) -> int:
    """The adaptation stage (1 or 2) head ``k`` reads: the first half of the heads stage 1, the rest stage 2."""
    return 1 if k < math.ceil(num_heads / 2) else 2


class AmphistaHeads(HeadExport, nn.Module):
    method = "amphista"

    def __init__(self, config, embed_tokens: nn.Embedding, lm_head: nn.Module, num_heads: int = 4) -> None:
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

        super().__init__()
        if num_heads < 1:
            raise ValueError(f"Amphista needs at least one drafting head, got {num_heads}")
        self.config = config
        self.num_heads = int(num_heads)
        hidden = int(config.hidden_size)
        self.fuse = nn.Linear(2 * hidden, hidden, bias=False)
        self.adapt = nn.ModuleList([LlamaDecoderLayer(config, layer_idx=i) for i in range(2)])
        self.rotary_emb = LlamaRotaryEmbedding(config)
        self.mlps = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(self.num_heads)])
        for mlp in self.mlps:  # Medusa's start: each head's block is the identity
            nn.init.zeros_(mlp.weight)
            nn.init.zeros_(mlp.bias)
        self.position = nn.Parameter(torch.zeros(self.num_heads, hidden))
        heads = int(config.num_attention_heads)
        self.auto_embedding = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0,
                                                         activation="gelu", batch_first=True, norm_first=True)
        self.act = nn.SiLU()
        self.__dict__["embed_tokens"] = embed_tokens
        self.__dict__["lm_head"] = lm_head
        self._start_as_the_targets_head()

    @torch.no_grad()
    def _start_as_the_targets_head(self) -> None:
        """Medusa's start, kept through the new parts: the fusion passes ``h_t`` through and every residual
        branch (the adaptation layers' attention and MLP outputs, the Auto-embedding Block's) starts at
        zero, so untrained heads are the target's LM head on ``h_t`` instead of noise."""
        hidden = self.fuse.weight.shape[0]
        self.fuse.weight.zero_()
        self.fuse.weight[:, :hidden] = torch.eye(hidden)
        for layer in self.adapt:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        block = self.auto_embedding
        for linear in (block.self_attn.out_proj, block.linear2):
            linear.weight.zero_()
            linear.bias.zero_()

    @classmethod
    def for_target(cls, target, num_heads: int = 4, config=None) -> AmphistaHeads:
        config = config or draft_llama_config(target.config, num_layers=2)
        heads = cls(config, target.get_input_embeddings(), target.get_output_embeddings(), num_heads)
        weight = target.get_output_embeddings().weight
        return heads.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> AmphistaHeads:
        """Untrained heads for tests: every zero-started part random, so the heads differ and interact."""
        heads = cls.for_target(target, num_heads=num_heads)
        with torch.no_grad():
            for mlp in heads.mlps:
                mlp.weight.normal_(0, 0.3)
            heads.position.normal_(0, 0.3)
            heads.fuse.weight.normal_(0, 0.1)
            for layer in heads.adapt:
                layer.self_attn.o_proj.weight.normal_(0, 0.1)
                layer.mlp.down_proj.weight.normal_(0, 0.1)
            heads.auto_embedding.self_attn.out_proj.weight.normal_(0, 0.3)
            heads.auto_embedding.linear2.weight.normal_(0, 0.3)
        return heads

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    @property
    def dtype(self) -> torch.dtype:
        return self.fuse.weight.dtype

    # -- the two parts --------------------------------------------------------------------------
    def adapt_states(self, hidden: torch.Tensor, next_tokens: torch.Tensor, position_ids: torch.Tensor,
                     past_key_values=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1 and stage 2 features ``[B, n, H]`` of positions with final states ``hidden [B, n, H]``
        and following tokens ``next_tokens [B, n]`` (causal; appended to ``past_key_values`` when given)."""
        from specplug.kit.heads import default_mask

        embeds = self.embed_tokens(next_tokens).to(self.dtype)
        x = self.fuse(torch.cat([hidden.to(self.dtype), embeds], dim=-1))
        past = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
        mask = default_mask(None, past, x.shape[1], x.shape[0], x.dtype, x.device)
        position_embeddings = self.rotary_emb(x, position_ids)
        stages = []
        for layer in self.adapt:
            x = layer(x, attention_mask=mask, position_ids=position_ids, past_key_values=past_key_values,
                      use_cache=past_key_values is not None, position_embeddings=position_embeddings)
            stages.append(x)
        return stages[0], stages[1]

    def head_states(self, stage1: torch.Tensor, stage2: torch.Tensor) -> torch.Tensor:
        """The Auto-embedding Block's output ``[..., K, H]`` from the stage features ``[..., H]``."""
        lead = stage1.shape[:-1]
        units = []
        for k, mlp in enumerate(self.mlps):
            s = stage1 if stage_of(k, self.num_heads) == 1 else stage2
            units.append(s + self.act(mlp(s)))
        seq = torch.stack(units, dim=-2).reshape(-1, self.num_heads, stage1.shape[-1]) + self.position
        return self.auto_embedding(seq).reshape(*lead, self.num_heads, -1)  # no mask: every head sees every head

    def head_logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.lm_head(states)

    # -- files ------------------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        config = self.config.to_dict()
        for key in ("_attn_implementation", "attn_implementation"):
            config.pop(key, None)
        config.update(architectures=["AmphistaHeads"], model_type="amphista", num_hidden_layers=2,
                      num_heads=self.num_heads, tie_word_embeddings=False,
                      torch_dtype=str(self.dtype).replace("torch.", ""))
        return config

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()
                if not name.startswith("rotary_emb.")}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> AmphistaHeads:
        from safetensors.torch import load_file

        folder = Path(folder)
        saved = json.loads((folder / "config.json").read_text())
        heads = cls.for_target(target, int(saved["num_heads"]), draft_llama_config(saved, num_layers=2))
        missing, unexpected = heads.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        missing = [m for m in missing if not m.startswith("rotary_emb.")]
        if missing or unexpected:
            raise ValueError(f"{folder}/model.safetensors is not an Amphista head: missing {missing}, unexpected {unexpected}")
        return heads
