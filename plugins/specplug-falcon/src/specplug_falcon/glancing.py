"""Coupled Sequential Glancing Distillation's glancing step (FALCON, arXiv 2412.12639, Sec. 3.2).

Glancing (as in the Glancing Transformer for non-autoregressive translation) reveals part of the
answer to a parallel decoder in proportion to how wrong its first attempt was, so it learns the
dependencies among the tokens it emits together. FALCON's version, for a drafter whose position ``p``
reads ``(f_p, x[p + 1])`` and must output ``f_{p+k}`` (hence token ``x[p + k + 1]``):

1. a first forward without gradient predicts every position; the **Hamming distance** ``d`` of a row
   is the number of loss positions whose predicted token is wrong;
2. ``N = floor(lambda * d)`` inputs are replaced (``lambda`` decays over training, 0.45 -> 0.1 as in
   the authors' schedule); positions are picked by block: for ``k = 2``, ``N`` blocks each reveal
   their first position; for ``k > 2``, ``N // k`` blocks each reveal a prefix of random length
   ``1 .. k - 1`` (never a whole block: some position of it must still be predicted);
3. **coupled**: a revealed position gets BOTH the target feature ``f_{p+k}`` and the target token
   ``x[p + k + 1]`` as its inputs (the output the drafter should give there), so the later
   positions of its block, which attend to it through the relaxed mask, condition on the true
   earlier outputs of their block -- **sequential**: revealed positions are a block's prefix.

Then the drafter trains on the glanced inputs. Blocks are aligned to multiples of ``k`` from the
first position of a batch row, as the drafter's mask is.
"""

from __future__ import annotations

import torch

__all__ = ["GLANCE_END", "GLANCE_START", "glance_positions", "glance_ratio"]

GLANCE_START, GLANCE_END = 0.45, 0.1


def glance_ratio(step: int, decay_steps: int) -> float:
    """``lambda`` at ``step``: linear from :data:`GLANCE_START` to :data:`GLANCE_END` over ``decay_steps``."""
    if decay_steps <= 0:
        return GLANCE_END
    share = min(1.0, step / decay_steps)
    return GLANCE_START + (GLANCE_END - GLANCE_START) * share


def glance_positions(wrong: torch.Tensor, loss_mask: torch.Tensor, k: int, ratio: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The ``[B, T]`` bool mask of inputs to replace.

    ``wrong [B, T]``: loss positions whose first-pass prediction missed; ``loss_mask [B, T]``: the
    positions that carry loss (only these are ever revealed). See the module docstring for the rule.
    """
    batch, length = loss_mask.shape
    reveal = torch.zeros(batch, length, dtype=torch.bool)
    if k < 2:  # a block of one: revealing it would hand the drafter its own answer
        return reveal.to(loss_mask.device)
    wrong, loss_mask = wrong.cpu(), loss_mask.cpu()
    for row in range(batch):
        errors = int((wrong[row] & loss_mask[row]).sum())
        count = int(ratio * errors)
        blocks = [s for s in range(0, length, k) if bool(loss_mask[row, s : s + k].all()) and s + k <= length]
        picks = count if k <= 2 else count // k
        picks = min(picks, len(blocks))
        if picks <= 0:
            continue
        order = torch.randperm(len(blocks), generator=generator)[:picks].tolist()
        for index in order:
            start = blocks[index]
            prefix = 1 if k <= 2 else int(torch.randint(1, k, (1,), generator=generator))
            reveal[row, start : start + prefix] = True
    return reveal.to(loss_mask.device)
