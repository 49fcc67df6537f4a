"""SpecDec++'s acceptance-prediction head (Huang, Guo, Wang, arXiv 2405.19715).

A small residual MLP (``depth`` blocks ``x + SiLU(W x + b)``, then a linear layer to one logit) on the
draft model's final hidden state at the position that predicts the next draft token. Its sigmoid is
the predicted probability that the target *rejects* that token. The draft model is a layer subset of
the target (``draft_layers``, the model ``specplug models derive`` writes), recorded in the head's
config so the proposer builds the same draft the head was trained on. specplug's own layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["AcceptanceHead", "default_draft_layers"]


def default_draft_layers(num_layers: int) -> list[int]:
    """The first half of the target's layers (at least one)."""
    return list(range(max(1, num_layers // 2)))


class AcceptanceHead(HeadExport, nn.Module):
    method = "specdec_pp"

    def __init__(self, hidden_size: int, draft_layers: list[int], depth: int = 2) -> None:
        super().__init__()
        if depth < 0 or not draft_layers:
            raise ValueError(f"the head needs depth >= 0 and a draft of at least one layer, got {depth}, {draft_layers}")
        self.hidden_size, self.draft_layers, self.depth = hidden_size, [int(i) for i in draft_layers], depth
        self.blocks = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(depth)])
        self.act = nn.SiLU()
        self.out = nn.Linear(hidden_size, 1)

    @classmethod
    def for_target(cls, target, draft_layers: list[int] | None = None, depth: int = 2) -> AcceptanceHead:
        total = int(target.config.num_hidden_layers)
        layers = default_draft_layers(total) if draft_layers is None else list(draft_layers)
        if not layers or min(layers) < 0 or max(layers) >= total:
            raise ValueError(f"draft layers must lie in [0, {total}), got {layers}")
        weight = target.get_output_embeddings().weight
        return cls(int(target.config.hidden_size), layers, depth).to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, **_) -> AcceptanceHead:
        head = cls.for_target(target)
        with torch.no_grad():  # varied but moderate rejection chances (not all near 0 or 1)
            for block in head.blocks:
                block.weight.normal_(0, 0.3)
                block.bias.normal_(0, 0.3)
            head.out.weight.normal_(0, 1.0 / head.hidden_size**0.5)
            head.out.bias.fill_(-1.0)
        return head

    @property
    def hidden_state_layers(self) -> list[int]:
        return [-1]  # training reads the target's final state (its distribution p) beside the draft's

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Rejection logits ``[...]`` for draft states ``[..., H]``."""
        for block in self.blocks:
            hidden = hidden + self.act(block(hidden))
        return self.out(hidden)[..., 0]

    def vllm_config(self) -> dict:  # specplug's own layout
        return {"architectures": ["SpecplugAcceptanceHead"], "model_type": "specplug_specdec_pp", "hidden_size": self.hidden_size,
                "draft_layers": self.draft_layers, "depth": self.depth,
                "torch_dtype": str(next(self.parameters()).dtype).replace("torch.", "")}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> AcceptanceHead:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        head = cls(int(config["hidden_size"]), list(config["draft_layers"]), int(config["depth"]))
        head.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        weight = target.get_output_embeddings().weight
        return head.to(device=weight.device, dtype=weight.dtype)
