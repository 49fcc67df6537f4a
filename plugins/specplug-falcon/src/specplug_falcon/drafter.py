"""FALCON's semi-autoregressive drafter (Gao et al., arXiv 2412.12639).

At position ``t`` the drafter reads the target's final (post-norm) feature ``f_t`` and the embedding
of token ``t + 1`` (as EAGLE does) and predicts the feature ``k`` positions ahead, ``f_{t+k}``; the
target's LM head turns it into the token at ``t + k + 1``:

    x = cat(E(x[t + 1]), f_t)                                         [2H]
    z = LSTM(x)                 a 2-layer LSTM, one step from a zero state per position (see below)
    z = z + attn(z)             relaxed causal mask: a position sees every key up to the END of its
                                block of k (bidirectional inside the block, causal across blocks)
    z = z + mlp(norm(z))        (one Llama decoder layer; no input norm, as EAGLE and FALCON's code)
    logits = lm_head(z)         (the target's, shared, frozen)

So the ``k`` positions of one block give ``k`` consecutive draft tokens from ONE forward: with the
last ``k`` context positions ``r - k .. r - 1`` as a block (``r`` the root), position ``r - k + j``
predicts token ``r + 1 + j``. The next forward feeds the block's predicted features and the drafted
tokens as the inputs of positions ``r .. r + k - 1`` (semi-autoregressive: parallel inside a block,
autoregressive across blocks).

The LSTM: FALCON's code calls ``nn.LSTM`` (``batch_first=False``) on ``[batch, time, 2H]``, so it steps
along the batch axis and every position gets a 2-layer LSTM step from a zero state; we apply it the
same way, per position, which keeps the one attention layer the only place positions meet (and its
key/value cache exact). The target's embeddings and LM head are shared, neither trained nor saved.

Files: ``config.json`` (``model_type: falcon_drafter``; vLLM has no FALCON method) and
``model.safetensors`` (``lstm.*``, ``layers.0.*``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport, draft_llama_config

__all__ = ["FalconDrafter", "block_bias"]


def block_bias(n: int, k: int, past: int = 0, dtype=torch.float32, device=None, first_block: int = 0) -> torch.Tensor:
    """Additive ``[n, past + n]`` bias of FALCON's relaxed causal mask: query ``i`` sees every cached
    key and the new keys up to the end of its block (blocks of ``k`` new positions, the first one
    ``first_block`` long when given, so the LAST block of a context can be a whole one)."""
    ends = torch.empty(n, dtype=torch.long)
    start = 0
    size = first_block or k
    while start < n:
        end = min(start + size, n)
        ends[start:end] = end
        start, size = end, k
    keys = torch.arange(n)
    allow = keys[None, :] < ends[:, None]
    bias = torch.zeros(n, past + n, dtype=dtype, device=device)
    bias[:, past:] = torch.zeros(n, n, dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min).to(device)
    return bias


class FalconDrafter(HeadExport, nn.Module):
    """The drafter: LSTM + one decoder layer with the relaxed causal mask; embeddings and LM head shared."""

    method = "falcon"

    def __init__(self, config, embed_tokens: nn.Embedding, lm_head: nn.Module, block_size: int = 2) -> None:
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

        super().__init__()
        if block_size < 1:
            raise ValueError(f"FALCON drafts blocks of k >= 1 tokens, got k={block_size}")
        self.config = config
        self.block_size = int(block_size)
        hidden = int(config.hidden_size)
        self.lstm = nn.LSTM(2 * hidden, hidden, num_layers=2)
        layer = LlamaDecoderLayer(config, layer_idx=0)
        del layer.input_layernorm
        layer.input_layernorm = nn.Identity()
        self.layers = nn.ModuleList([layer])
        self.rotary_emb = LlamaRotaryEmbedding(config)
        self.__dict__["embed_tokens"] = embed_tokens
        self.__dict__["lm_head"] = lm_head

    @classmethod
    def for_target(cls, target, block_size: int = 2, config=None) -> FalconDrafter:
        config = config or draft_llama_config(target.config, num_layers=1)
        drafter = cls(config, target.get_input_embeddings(), target.get_output_embeddings(), block_size)
        weight = target.get_output_embeddings().weight
        return drafter.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, block_size: int = 2, **_) -> FalconDrafter:
        """An untrained drafter for tests (torch's default init, seeded by the caller)."""
        return cls.for_target(target, block_size=block_size)

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def forward(self, input_ids: torch.Tensor, features: torch.Tensor, position_ids: torch.Tensor,
                past_key_values=None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted features ``[B, n, H]`` (``input_ids [B, n]``: the token after each feature's
        position; ``features [B, n, H]``; ``position_ids [B, n]``). ``attention_mask``: additive
        ``[B or 1, 1, n, past + n]``; default: the relaxed causal mask, blocks from the first new position."""
        batch, n = input_ids.shape
        embeds = self.embed_tokens(input_ids).to(self.layers[0].mlp.down_proj.weight.dtype)
        x = torch.cat([embeds, features.to(embeds.dtype)], dim=-1)
        z, _ = self.lstm(x.reshape(1, batch * n, -1))  # one step per position (see the module docstring)
        z = z.reshape(batch, n, -1)
        past = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
        if attention_mask is None:
            attention_mask = block_bias(n, self.block_size, past, z.dtype, z.device)[None, None]
        position_embeddings = self.rotary_emb(z, position_ids)
        for layer in self.layers:
            z = layer(z, attention_mask=attention_mask.to(z.dtype), position_ids=position_ids,
                      past_key_values=past_key_values, use_cache=past_key_values is not None,
                      position_embeddings=position_embeddings)
        return z

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.lm_head(features)

    # -- files ------------------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        config = self.config.to_dict()
        for key in ("_attn_implementation", "attn_implementation"):
            config.pop(key, None)
        config.update(architectures=["FalconDrafter"], model_type="falcon_drafter", num_hidden_layers=1,
                      block_size=self.block_size, tie_word_embeddings=False,
                      torch_dtype=str(self.layers[0].mlp.down_proj.weight.dtype).replace("torch.", ""))
        return config

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()
                if not name.startswith("rotary_emb.")}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> FalconDrafter:
        from safetensors.torch import load_file

        folder = Path(folder)
        saved = json.loads((folder / "config.json").read_text())
        drafter = cls.for_target(target, int(saved["block_size"]), draft_llama_config(saved, num_layers=1))
        missing, unexpected = drafter.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        missing = [m for m in missing if not m.startswith("rotary_emb.")]
        if missing or unexpected:
            raise ValueError(f"{folder}/model.safetensors is not a FALCON drafter: missing {missing}, unexpected {unexpected}")
        return drafter
