"""Blockwise parallel decoding's proposal heads (Stern et al., arXiv 1811.03115, Sec. 5).

The paper's model ``p_1 .. p_k`` predicts offsets ``1 .. k`` from one decoder output ``h_t``: ``p_1``
is the base model itself, and ``p_2 .. p_k`` are extra heads made of one feed-forward layer (hidden
size ``ffn_mult x d_model`` per head, ReLU) with a residual connection onto ``h_t``, projected by the
*shared* output layer of the base model:

    z_j = h_t + W2_j ReLU(W1_j h_t + b1_j) + b2_j          j = 2 .. k
    p_j(y_{t + j} | y_{<= t}) = softmax(lm_head(z_j))

Here the base model is the frozen target, ``h_t`` its final (post-norm) hidden state, and
``lm_head`` its own (shared, frozen, not saved): the paper's "frozen base model" setting, where only
the heads are trained (its fine-tuned variant changes the base model and is left out). ``W2``
starts at zero, so an untrained head repeats ``p_1``.

Files: ``config.json`` (``model_type: blockwise``; vLLM has no such method) and ``model.safetensors``
with ``heads.{i}.fc1.weight|bias`` and ``heads.{i}.fc2.weight|bias`` for offsets ``i + 2``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["BlockwiseHeads"]


class _OffsetHead(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, inner)
        self.fc2 = nn.Linear(inner, hidden)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.fc2(torch.relu(self.fc1(hidden)))


class BlockwiseHeads(HeadExport, nn.Module):
    """Block size ``k``: ``k - 1`` offset heads over the target's final state and its shared LM head."""

    method = "blockwise"

    def __init__(self, hidden_size: int, vocab_size: int, lm_head: nn.Module, block_size: int = 4, ffn_mult: int = 4) -> None:
        super().__init__()
        if block_size < 2:
            raise ValueError(f"blockwise decoding needs a block of at least 2 (the target and one head), got {block_size}")
        self.hidden_size, self.vocab_size, self.block_size, self.ffn_mult = hidden_size, vocab_size, block_size, ffn_mult
        self.heads = nn.ModuleList([_OffsetHead(hidden_size, ffn_mult * hidden_size) for _ in range(block_size - 1)])
        self.__dict__["lm_head"] = lm_head  # the target's: shared, frozen, not saved

    @classmethod
    def for_target(cls, target, block_size: int = 4, ffn_mult: int = 4) -> BlockwiseHeads:
        weight = target.get_output_embeddings().weight
        heads = cls(int(target.config.hidden_size), int(weight.shape[0]), target.get_output_embeddings(), block_size, ffn_mult)
        return heads.to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, num_heads: int = 3, **_) -> BlockwiseHeads:
        """Untrained heads for tests (``num_heads`` extra heads: block size ``num_heads + 1``), with
        random output layers so that they disagree with the target."""
        heads = cls.for_target(target, block_size=num_heads + 1, ffn_mult=2)
        with torch.no_grad():
            for head in heads.heads:
                head.fc2.weight.normal_(0, 0.3)
        return heads

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]

    def offset_logits(self, j: int, hidden: torch.Tensor) -> torch.Tensor:
        """``p_j``'s logits (``j`` = 1 .. block_size): the token ``j`` places after ``hidden``'s position."""
        if j == 1:
            return self.lm_head(hidden)
        return self.lm_head(self.heads[j - 2](hidden))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of ``p_1 .. p_k``, ``[k, ..., V]`` (``p_1`` is the target's own prediction)."""
        return torch.stack([self.offset_logits(j, hidden) for j in range(1, self.block_size + 1)])

    # -- files ------------------------------------------------------------------------------------
    def vllm_config(self) -> dict:
        """``config.json`` (vLLM has no blockwise method; the same file layout as the other heads)."""
        return {"architectures": ["BlockwiseHeads"], "model_type": "blockwise", "hidden_size": self.hidden_size,
                "vocab_size": self.vocab_size, "block_size": self.block_size, "ffn_mult": self.ffn_mult,
                "torch_dtype": str(self.heads[0].fc1.weight.dtype).replace("torch.", "")}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> BlockwiseHeads:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        heads = cls.for_target(target, int(config["block_size"]), int(config["ffn_mult"]))
        heads.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        return heads
