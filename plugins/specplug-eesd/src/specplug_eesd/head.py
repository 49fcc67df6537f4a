"""EESD's early-exit head: an adapter on the target's residual stream after its first N layers.

The draft is the target's own first ``exit_layer`` layers (shared weights, no copy), then this
adapter, then the target's final norm and LM head (also shared). The adapter is ``num_layers``
residual blocks ``x + SiLU(W x + b)`` initialised to the identity, so an untrained head is a plain
early exit and training only improves on it. It reads hidden-state layer ``exit_layer`` (the
residual stream entering decoder layer ``exit_layer``), which ``specplug train data`` stores.
The folder holds specplug's own layout (vLLM has no early-exit draft), loaded by :func:`load_head`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from specplug.kit.heads import HeadExport

__all__ = ["EarlyExitHead", "default_exit_layer"]


def default_exit_layer(num_layers: int) -> int:
    """Half the target's layers (SmolLM2: 15 of 30): the middle layer ``specplug train data`` stores for
    EAGLE-3 already, so EESD trains on the same data."""
    return num_layers // 2


class EarlyExitHead(HeadExport, nn.Module):
    method = "eesd"

    def __init__(self, hidden_size: int, exit_layer: int, num_layers: int = 1) -> None:
        super().__init__()
        if exit_layer < 1 or num_layers < 1:
            raise ValueError(f"the early exit needs exit_layer >= 1 and at least one adapter layer, got {exit_layer}, {num_layers}")
        self.hidden_size, self.exit_layer, self.num_layers = hidden_size, exit_layer, num_layers
        self.layers = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(num_layers)])
        self.act = nn.SiLU()
        for layer in self.layers:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def for_target(cls, target, exit_layer: int | None = None, num_layers: int = 1) -> EarlyExitHead:
        total = int(target.config.num_hidden_layers)
        exit_layer = default_exit_layer(total) if exit_layer is None else exit_layer
        if not 1 <= exit_layer < total:
            raise ValueError(f"exit_layer must lie in [1, {total}) for a {total}-layer target, got {exit_layer}")
        weight = target.get_output_embeddings().weight
        return cls(int(target.config.hidden_size), exit_layer, num_layers).to(device=weight.device, dtype=weight.dtype)

    @classmethod
    def random_for_target(cls, target, seed: int = 0, **_) -> EarlyExitHead:
        head = cls.for_target(target)
        with torch.no_grad():
            for layer in head.layers:
                layer.weight.normal_(0, 0.2)
        return head

    @property
    def hidden_state_layers(self) -> list[int]:
        return [self.exit_layer]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden = hidden + self.act(layer(hidden))
        return hidden

    def vllm_config(self) -> dict:  # specplug's own layout: vLLM has no early-exit drafter
        return {"architectures": ["SpecplugEarlyExitAdapter"], "model_type": "specplug_eesd", "hidden_size": self.hidden_size,
                "exit_layer": self.exit_layer, "num_adapter_layers": self.num_layers,
                "torch_dtype": str(next(self.parameters()).dtype).replace("torch.", "")}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}

    @classmethod
    def from_folder(cls, folder: str | Path, target) -> EarlyExitHead:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        head = cls(int(config["hidden_size"]), int(config["exit_layer"]), int(config["num_adapter_layers"]))
        head.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        weight = target.get_output_embeddings().weight
        return head.to(device=weight.device, dtype=weight.dtype)
