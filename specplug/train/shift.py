"""Shifting a batch's tensors to line each position up with the token a draft step predicts.

Every objective trains "from position ``t``, predict the token ``d`` ahead"; these two helpers are
how the objectives the plugins register build their targets and masks from a
:class:`~specplug.train.dataset.Batch`.
"""

from __future__ import annotations

import torch

from specplug.train.dataset import Batch

__all__ = ["ahead", "target_mask"]


def ahead(x: torch.Tensor, d: int, fill=0) -> torch.Tensor:
    """``x`` shifted left by ``d`` along dim 1 (``y[:, t] = x[:, t + d]``), padded with ``fill``."""
    if d == 0:
        return x
    pad = torch.full_like(x[:, :d], fill)
    return torch.cat([x[:, d:], pad], dim=1)


def target_mask(batch: Batch, d: int) -> torch.Tensor:
    """Roots (positions a draft starts from in decoding) whose token ``d`` ahead exists."""
    return batch.root & ahead(batch.valid, d, False)
