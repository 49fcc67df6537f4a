"""EAGLE-3 (Li et al., arXiv 2503.01840) in vLLM's ``LlamaForCausalLMEagle3`` layout.

The first draft step reads three target states at position ``t`` (low, mid, high layers, ids in
``eagle_aux_hidden_state_layer_ids``, concatenated: ``[n, 3H]``) fused by ``fc`` ([H, 3H]); later
steps read the head's own output ``[n, H]`` instead, as vLLM does. With the embedding of token
``t + 1`` it predicts token ``t + 2`` over a reduced draft vocabulary:

    feature = fc(cat(low, mid, high))                  (first step only)
    x = cat(input_layernorm(embed(x[t + 1])), hidden_norm(feature))      [n, 2H]
    r = feature + attn(x)                              q/k/v projections read 2H inputs
    out = r + mlp(post_attention_layernorm(r))         fed back as the next step's feature
    logits = lm_head(norm(out))                        [n, draft_vocab]; target id = j + d2t[j]

Checkpoint names are what ``vllm/model_executor/models/llama_eagle3.py`` loads: ``fc.weight``,
``layers.0.{self_attn.*, mlp.*, input_layernorm, hidden_norm, post_attention_layernorm}.weight``,
``norm.weight``, ``lm_head.weight`` [draft_vocab, H], ``d2t`` ([draft_vocab] int64 offsets, target id
= draft id + d2t) and ``t2d`` ([vocab] bool, which target ids the draft vocabulary has; vLLM skips
it). The embeddings are the target's, shared, never saved. ``norm_before_residual`` is false (the
residual is the un-normed feature, as in EAGLE-3's own code).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from specplug.kit.heads import HeadExport, as_batch, default_mask, draft_llama_config

__all__ = ["Eagle3Head", "default_aux_layers"]


def default_aux_layers(num_layers: int) -> list[int]:
    """vLLM's default EAGLE-3 layers for a target with ``num_layers`` layers: (2, L // 2, L - 3);
    (0, L // 2, L - 1) for targets of 3 to 5 layers (tiny test models)."""
    if num_layers >= 6:
        return [2, num_layers // 2, num_layers - 3]
    if num_layers >= 3:
        return [0, num_layers // 2, num_layers - 1]
    raise ValueError(f"EAGLE-3 fuses three distinct target layers; a {num_layers}-layer target has too few")


class _Eagle3Layer(nn.Module):
    def __init__(self, config) -> None:
        from transformers.models.llama.modeling_llama import LlamaAttention, LlamaMLP, LlamaRMSNorm

        super().__init__()
        hidden, eps = int(config.hidden_size), float(config.rms_norm_eps)
        attn = LlamaAttention(config, layer_idx=0)
        bias = bool(getattr(config, "attention_bias", False))
        attn.q_proj = nn.Linear(2 * hidden, attn.q_proj.out_features, bias=bias)
        attn.k_proj = nn.Linear(2 * hidden, attn.k_proj.out_features, bias=bias)
        attn.v_proj = nn.Linear(2 * hidden, attn.v_proj.out_features, bias=bias)
        self.self_attn = attn
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(hidden, eps=eps)
        self.hidden_norm = LlamaRMSNorm(hidden, eps=eps)
        self.post_attention_layernorm = LlamaRMSNorm(hidden, eps=eps)

    def forward(self, embeds, hidden, mask, position_embeddings, past_key_values):
        residual = hidden
        x = torch.cat([self.input_layernorm(embeds), self.hidden_norm(hidden)], dim=-1)
        attn, _ = self.self_attn(x, position_embeddings=position_embeddings, attention_mask=mask,
                                 past_key_values=past_key_values)
        residual = residual + attn
        return residual + self.mlp(self.post_attention_layernorm(residual))


class Eagle3Head(HeadExport, nn.Module):
    """The EAGLE-3 draft layer with its own reduced-vocabulary LM head; embeddings shared."""

    method = "eagle3"

    def __init__(self, config, embed_tokens: nn.Embedding, draft_token_ids, aux_layers) -> None:
        from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding

        super().__init__()
        hidden = int(config.hidden_size)
        vocab = int(config.vocab_size)
        ids = np.unique(np.asarray(draft_token_ids, dtype=np.int64).reshape(-1))
        if ids.size == 0 or ids[0] < 0 or ids[-1] >= vocab:
            raise ValueError(f"draft vocabulary ids must be a non-empty set in [0, {vocab})")
        self.aux_layers = [int(i) for i in aux_layers]
        config.draft_vocab_size = int(ids.size)
        config.eagle_aux_hidden_state_layer_ids = self.aux_layers
        config.target_hidden_size = int(getattr(config, "target_hidden_size", None) or hidden)
        self.config = config
        self.fc = nn.Linear(len(self.aux_layers) * config.target_hidden_size, hidden, bias=False)
        self.layers = nn.ModuleList([_Eagle3Layer(config)])
        self.norm = LlamaRMSNorm(hidden, eps=float(config.rms_norm_eps))
        self.lm_head = nn.Linear(hidden, int(ids.size), bias=False)
        self.rotary_emb = LlamaRotaryEmbedding(config)
        token_ids = torch.as_tensor(ids)
        self.register_buffer("d2t", token_ids - torch.arange(ids.size), persistent=True)
        t2d = torch.zeros(vocab, dtype=torch.bool)
        t2d[token_ids] = True
        self.register_buffer("t2d", t2d, persistent=True)
        self.__dict__["embed_tokens"] = embed_tokens  # the target's, not registered or saved

    @classmethod
    def for_target(cls, target, draft_token_ids=None, aux_layers=None, config=None) -> Eagle3Head:
        """A head for ``target``; its LM head starts as the target's rows for the draft vocabulary."""
        num_layers = int(target.config.num_hidden_layers)
        aux_layers = list(aux_layers) if aux_layers is not None else default_aux_layers(num_layers)
        for layer in aux_layers:
            if not 0 <= int(layer) < num_layers:
                raise ValueError(f"EAGLE-3 layer {layer} does not exist in a {num_layers}-layer target (use 0..{num_layers - 1})")
        vocab = int(target.get_output_embeddings().weight.shape[0])
        if draft_token_ids is None:
            draft_token_ids = np.arange(vocab)
        config = config or draft_llama_config(target.config, num_layers=1)
        head = cls(config, target.get_input_embeddings(), draft_token_ids, aux_layers)
        weight = target.get_output_embeddings().weight
        with torch.no_grad():
            head.lm_head.weight.copy_(weight.detach().to("cpu", torch.float32)[head.token_ids.cpu()])
        return head.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, draft_vocab: int | None = None, **_) -> Eagle3Head:
        """An untrained head for tests: ``draft_vocab`` random target ids (``None``: the whole
        vocabulary) drawn with ``seed``; weights from torch's global generator, seeded by the caller."""
        vocab = int(target.get_output_embeddings().weight.shape[0])
        ids = None
        if draft_vocab is not None:
            ids = np.random.default_rng(seed).choice(vocab, size=min(draft_vocab, vocab), replace=False)
        return cls.for_target(target, draft_token_ids=ids)

    @property
    def hidden_state_layers(self) -> list[int]:
        return list(self.aux_layers)

    @property
    def token_ids(self) -> torch.Tensor:
        """Target id of every draft index ``[draft_vocab]``."""
        return torch.arange(self.d2t.numel(), device=self.d2t.device) + self.d2t

    @property
    def draft_vocab_size(self) -> int:
        return int(self.d2t.numel())

    def fuse(self, aux_states: torch.Tensor) -> torch.Tensor:
        """Target states ``[..., 3H]`` (low, mid, high concatenated) as one feature ``[..., H]``."""
        return self.fc(aux_states.to(self.fc.weight.dtype))

    def forward(self, input_ids: torch.Tensor, features: torch.Tensor, position_ids: torch.Tensor,
                past_key_values=None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-norm outputs ``[n, H]`` (or ``[B, n, H]``), fed back as the next step's features.

        ``features``: ``[n, 3H]`` target states (fused by ``fc``) or ``[n, H]`` this head's outputs;
        ``input_ids``: the token after each feature's position; the rest as :class:`EagleHead`'s.
        """
        ids, feats, pos, unbatched = as_batch(input_ids, features, position_ids)
        hidden = self.fuse(feats) if feats.shape[-1] != self.config.hidden_size else feats.to(self.fc.weight.dtype)
        embeds = self.embed_tokens(ids).to(hidden.dtype)
        past = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
        mask = default_mask(attention_mask, past, ids.shape[1], ids.shape[0], hidden.dtype, hidden.device)
        position_embeddings = self.rotary_emb(hidden, pos)
        for layer in self.layers:
            hidden = layer(embeds, hidden, mask, position_embeddings, past_key_values)
        return hidden[0] if unbatched else hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Draft-vocabulary logits ``[..., draft_vocab]`` (index ``j`` is target id ``j + d2t[j]``)."""
        return self.lm_head(self.norm(hidden))

    def target_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the target vocabulary, ``-inf`` outside the draft vocabulary (as vLLM maps them)."""
        draft = self.logits(hidden)
        full = draft.new_full((*draft.shape[:-1], int(self.t2d.numel())), float("-inf"))
        full[..., self.token_ids] = draft
        return full

    def to_target(self, draft_index: torch.Tensor) -> torch.Tensor:
        """Target ids of draft indices."""
        return draft_index + self.d2t[draft_index]

    # -- vLLM format ----------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        config = self.config.to_dict()
        config.pop("_attn_implementation", None)
        config.pop("attn_implementation", None)
        config.update(
            architectures=["LlamaForCausalLMEagle3"], model_type="llama", num_hidden_layers=1,
            tie_word_embeddings=False, draft_vocab_size=self.draft_vocab_size,
            target_hidden_size=int(self.config.target_hidden_size),
            eagle_aux_hidden_state_layer_ids=list(self.aux_layers),
            eagle_config={"eagle_aux_hidden_state_layer_ids": list(self.aux_layers), "use_aux_hidden_state": True},
            norm_before_residual=False, norm_before_fc=False,
            torch_dtype=str(self.fc.weight.dtype).replace("torch.", ""),
        )
        if config.get("rope_theta") is None:
            rope = config.get("rope_parameters") or {}
            if isinstance(rope, dict) and "rope_theta" in rope:
                config["rope_theta"] = rope["rope_theta"]
        return config

    def speculators_config(self, verifier_name: str) -> dict:
        """The same head as a vllm-project/speculators config (``speculators_model_type: eagle3``)."""
        transformer = self.vllm_config()
        for key in ("architectures", "draft_vocab_size", "target_hidden_size", "eagle_aux_hidden_state_layer_ids",
                    "eagle_config", "norm_before_residual", "norm_before_fc", "torch_dtype"):
            transformer.pop(key, None)
        return {
            "architectures": ["Eagle3Speculator"],
            "speculators_model_type": "eagle3",
            "speculators_version": "0.1.0",
            "draft_vocab_size": self.draft_vocab_size,
            "target_hidden_size": int(self.config.target_hidden_size),
            "norm_before_residual": False,
            "eagle_aux_hidden_state_layer_ids": list(self.aux_layers),
            "transformer_layer_config": transformer,
            "speculators_config": {
                "algorithm": "eagle3",
                "default_proposal_method": "greedy",
                "proposal_methods": [{"proposal_type": "greedy", "speculative_tokens": 3}],
                "verifier": {"name_or_path": verifier_name, "architectures": ["LlamaForCausalLM"]},
            },
            "torch_dtype": str(self.fc.weight.dtype).replace("torch.", ""),
        }

    def save_speculators(self, folder: str | Path, metadata, verifier: str, num_speculative_tokens: int = 3) -> Path:
        """The head in the vllm-project/speculators format: :meth:`speculators_config` as
        ``config.json`` beside the same tensors. vLLM reads it with ``SpeculatorsConfig``."""
        folder = self.save_pretrained(folder, metadata)
        config = self.speculators_config(verifier)
        config["speculators_config"]["proposal_methods"][0]["speculative_tokens"] = int(num_speculative_tokens)
        (Path(folder) / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        return Path(folder)

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()
                if not name.startswith("rotary_emb.")}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> Eagle3Head:
        from safetensors.torch import load_file

        folder = Path(folder)
        raw = json.loads((folder / "config.json").read_text())
        if "speculators_model_type" in raw:  # the speculators format: the layer config is nested
            raw = {**raw["transformer_layer_config"], "target_hidden_size": raw.get("target_hidden_size"),
                   "eagle_aux_hidden_state_layer_ids": raw["eagle_aux_hidden_state_layer_ids"]}
        state = load_file(str(folder / "model.safetensors"))
        token_ids = (torch.arange(state["d2t"].numel()) + state["d2t"]).numpy()
        config = draft_llama_config(raw, num_layers=1, target_hidden_size=raw.get("target_hidden_size"))
        head = cls.for_target(target, token_ids, raw["eagle_aux_hidden_state_layer_ids"], config)
        missing, unexpected = head.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.startswith("rotary_emb.")]
        if missing or unexpected:
            raise ValueError(f"{folder}/model.safetensors does not match the EAGLE-3 layout: missing {missing}, unexpected {unexpected}")
        return head
