"""EAGLE (Li et al., arXiv 2401.15077) in vLLM's Llama-EAGLE layout (``EagleLlamaForCausalLM``).

At position ``t`` the head reads the embedding of token ``t + 1`` and a feature of position ``t``
(the target's final post-norm hidden state for the first step, the head's own output after that),
and predicts the feature of ``t + 1``; the target's LM head turns it into logits for token ``t + 2``:

    h = fc(cat(embed(x[t + 1]), feature[t]))           fc: [H, 2H], no bias
    h = h + attn(h)                                     (no input_layernorm, as EAGLE and vLLM do)
    h = h + mlp(post_attention_layernorm(h))
    logits = lm_head(h)                                 (no final norm)

Checkpoint names are what ``vllm/model_executor/models/llama_eagle.py`` loads: ``fc.weight`` and
``layers.0.{self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}.weight``.
The embeddings and the LM head are the target's, shared, never saved (vLLM shares them too).

The decoder layer is transformers' ``LlamaDecoderLayer``, so the KV cache is a transformers
``DynamicCache`` that rolls back by cropping or index-selecting like
:class:`specplug.kit.target.TargetModel`'s, and the attention mask is a 4D additive one (a tree's,
or causal when none is given).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport, as_batch, default_mask, draft_llama_config

__all__ = ["EagleHead"]


class EagleHead(HeadExport, nn.Module):
    """One EAGLE decoder layer over (next-token embedding, feature); embeddings and LM head shared."""

    method = "eagle"

    def __init__(self, config, embed_tokens: nn.Embedding, lm_head: nn.Module) -> None:
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

        super().__init__()
        self.config = config
        hidden = int(config.hidden_size)
        self.fc = nn.Linear(2 * hidden, hidden, bias=False)
        layer = LlamaDecoderLayer(config, layer_idx=0)
        del layer.input_layernorm
        layer.input_layernorm = nn.Identity()
        self.layers = nn.ModuleList([layer])
        self.rotary_emb = LlamaRotaryEmbedding(config)
        # the target's modules, not registered: they are neither trained nor saved with the head
        self.__dict__["embed_tokens"] = embed_tokens
        self.__dict__["lm_head"] = lm_head

    @classmethod
    def for_target(cls, target, config=None) -> EagleHead:
        config = config or draft_llama_config(target.config, num_layers=1)
        head = cls(config, target.get_input_embeddings(), target.get_output_embeddings())
        weight = target.get_output_embeddings().weight
        return head.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, **_) -> EagleHead:
        """An untrained head for tests (random init from torch's global generator, seeded by the caller)."""
        return cls.for_target(target)

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def forward(self, input_ids: torch.Tensor, features: torch.Tensor, position_ids: torch.Tensor,
                past_key_values=None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[n, H]`` (or ``[B, n, H]`` for a batch ``input_ids [B, n]``).

        ``input_ids``: the token after each feature's position; ``features [n, H]``: target features
        (post-norm final states) or this head's own outputs; ``position_ids``: the features'
        positions; ``past_key_values``: a ``DynamicCache`` (appended to); ``attention_mask``: 4D
        additive ``[1 or B, 1, n, past + n]`` (default: causal).
        """
        ids, feats, pos, unbatched = as_batch(input_ids, features, position_ids)
        embeds = self.embed_tokens(ids).to(self.fc.weight.dtype)
        hidden = self.fc(torch.cat([embeds, feats.to(embeds.dtype)], dim=-1))
        past = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
        mask = default_mask(attention_mask, past, ids.shape[1], ids.shape[0], hidden.dtype, hidden.device)
        position_embeddings = self.rotary_emb(hidden, pos)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask, position_ids=pos, past_key_values=past_key_values,
                           use_cache=past_key_values is not None, position_embeddings=position_embeddings)
        return hidden[0] if unbatched else hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Target-vocabulary logits of the token after the next (the target's LM head, no norm)."""
        return self.lm_head(hidden)

    # -- vLLM format ----------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        config = self.config.to_dict()
        config.pop("_attn_implementation", None)
        config.pop("attn_implementation", None)
        config.update(architectures=["LlamaForCausalLM"], model_type="llama", num_hidden_layers=1,
                      tie_word_embeddings=False,
                      torch_dtype=str(self.fc.weight.dtype).replace("torch.", ""))
        if config.get("rope_theta") is None:
            rope = config.get("rope_parameters") or {}
            if isinstance(rope, dict) and "rope_theta" in rope:
                config["rope_theta"] = rope["rope_theta"]
        return config

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()
                if not name.startswith("rotary_emb.")}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> EagleHead:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = draft_llama_config(json.loads((folder / "config.json").read_text()), num_layers=1)
        head = cls.for_target(target, config)
        missing, unexpected = head.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        missing = [m for m in missing if not m.startswith("rotary_emb.")]
        if missing or unexpected:
            raise ValueError(f"{folder}/model.safetensors does not match the EAGLE layout: missing {missing}, unexpected {unexpected}")
        return head
