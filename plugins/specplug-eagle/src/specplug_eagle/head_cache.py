"""One request's EAGLE head KV cache: entries built from the target's real features, then drafts.

The head runs over *entries*. Entry ``t`` pairs the target's feature at position ``t`` with the
embedding of token ``t + 1`` (the token that feature predicted) and outputs a new feature from which
the head's logits predict token ``t + 2``; its position id is ``t`` (vLLM's EAGLE proposer pairs the
same way: target positions, target tokens shifted left by one).

When the request has ``N`` committed tokens, the target has produced features for positions
``0 .. N - 2`` (the root, token ``N - 1``, runs in the next verification), so the *real* entries are
``t = 0 .. N - 2``; the last one pairs the feature at ``N - 2`` with the root and predicts the first
draft token. Drafting appends entries whose features are the head's own outputs; they are dropped
when the draft is done (:meth:`HeadCache.discard_drafts`), because after verification the target
hands over its real features for the accepted positions and those replace the guesses
(EAGLE's rollback: the head's cache always agrees with what the target accepted).

Masks are 4D additive (0 = attend, dtype min = blocked), ``[1, 1, new, cached + new]``: real entries
causally, a draft entry its real prefix, its own ancestors among the draft entries, and itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from specplug.kit.target import causal_bias

__all__ = ["HeadCache"]


class HeadCache:
    """The head's KV cache for one request. ``runner`` is a :class:`specplug_eagle.heads.HeadRunner`."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.cache = runner.new_cache()
        self.real = 0  # entries t = 0 .. real - 1 are built from the target's features
        self.root_hidden: torch.Tensor | None = None  # [H] the head's output at entry real - 1
        self.root_logits: torch.Tensor | None = None  # [V or N] its logits (the first draft token's)

    @property
    def length(self) -> int:
        """Entries cached, real and draft."""
        return int(self.cache.get_seq_length())

    def feed_real(self, next_tokens: Sequence[int], features: torch.Tensor) -> None:
        """Append real entries ``t = real .. real + n - 1``: ``features[j]`` is the target's feature at
        position ``real + j`` ([n, F]) and ``next_tokens[j]`` the committed token at ``real + j + 1``."""
        n = len(next_tokens)
        if n == 0:
            return
        if features.shape[0] != n:
            raise ValueError(f"{n} tokens but {features.shape[0]} feature rows")
        if self.length != self.real:
            self.discard_drafts()
        positions = torch.arange(self.real, self.real + n, dtype=torch.long)
        mask = causal_bias(self.real, n, self.runner.dtype, self.runner.device)[None, None]
        hidden = self.runner.run(list(next_tokens), features, positions, self.cache, mask)  # [n, H]
        self.real += n
        self.root_hidden = hidden[-1]
        self.root_logits = self.runner.logits(hidden[-1:])[0]

    def feed_draft(self, tokens: Sequence[int], features: torch.Tensor, depths: Sequence[int],
                   ancestors: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Append draft entries, one per node: ``tokens[j]`` is the node's token (target id),
        ``features[j]`` its parent's output feature, ``depths[j]`` its depth (1 = a child of the root,
        entry ``real - 1 + depth``) and ``ancestors[j]`` the cache slots of its ancestors' entries
        (draft entries, root excluded). Returns the new entries' outputs ``[n, H]`` and logits ``[n, V or N]``."""
        n = len(tokens)
        past = self.length
        positions = torch.tensor([self.real - 1 + d for d in depths], dtype=torch.long)
        visible = [list(range(self.real)) + [int(s) for s in anc] + [past + j] for j, anc in enumerate(ancestors)]
        mask = self._mask(visible, past + n)
        hidden = self.runner.run(list(tokens), features, positions, self.cache, mask)
        return hidden, self.runner.logits(hidden)

    def discard_drafts(self) -> None:
        """Drop every draft entry (keep the real ones)."""
        if self.length > self.real:  # slice every layer, as TargetModel.rollback does (crop(n > 0) is deprecated)
            for layer in self.cache.layers:
                if getattr(layer, "keys", None) is not None and layer.keys.numel():
                    layer.keys = layer.keys[..., : self.real, :]
                    layer.values = layer.values[..., : self.real, :]

    def _mask(self, visible: list[list[int]], total: int) -> torch.Tensor:
        dtype = self.runner.dtype
        allow = torch.zeros(len(visible), total, dtype=torch.bool)
        for row, slots in enumerate(visible):
            allow[row, slots] = True
        bias = torch.zeros(len(visible), total, dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)
        return bias[None, None].to(self.runner.device)
