"""ReDrafter drafting in specplug's reference engine (Cheng et al., arXiv 2403.09919).

Each step the recurrent drafter (:mod:`specplug_redrafter.drafter`) reads the target's final state of
the position before the root and runs **beam search** from the root: ``beam_width`` beams of
``beam_length`` tokens, ranked by summed log-probability (one batched RNN step per token).
**Dynamic tree attention**: beams share prefixes (they all start from the few best first tokens), so
the beams are merged into one prefix tree (:func:`beams_to_tree`) and verified in one target pass
with tree attention instead of ``beam_width`` separate candidates; the tree's shape changes every
step with the beams. ``tree_size`` caps the nodes (whole beams are kept best first, the last one cut
to fit). Verification is the engine's (``tree_verification``): lossless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["ReDrafterOptions", "ReDrafterProposer", "beams_to_tree"]

METHOD = "redrafter"


def default_head_dir(target_model) -> Path:
    """The folder ``specplug train redrafter`` writes for ``target_model``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), METHOD)


class ReDrafterOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of a trained ReDrafter head; default: the folder `specplug train redrafter` writes "
        "for the target in specplug's cache")
    beam_width: int = Field(4, ge=1, description="beams kept by the beam search")
    beam_length: int | None = Field(None, ge=1, description="tokens per beam; default: the drafter's draft_length")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")


def beams_to_tree(beams: list[tuple[int, ...]], size: int) -> tuple[list[int], list[int]]:
    """Dynamic tree attention's merge: the prefix tree of ``beams`` (best first), at most ``size``
    nodes, as ``(tokens, parents)``; a shared prefix becomes one path of nodes."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    for beam in beams:
        for depth in range(1, len(beam) + 1):
            prefix = tuple(beam[:depth])
            if prefix in index:
                continue
            if len(tokens) == size:
                return tokens, parents
            index[prefix] = len(tokens)
            tokens.append(int(beam[depth - 1]))
            parents.append(index[prefix[:-1]] if depth > 1 else -1)
    return tokens, parents


class ReDrafterProposer(BaseProposer):
    """Beam search with the recurrent drafter, merged into a tree; see the module docstring."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)

    def __init__(self, options: ReDrafterOptions | None = None) -> None:
        self.options = options or ReDrafterOptions()
        self.head = None
        self.meta: Any = None
        self._bound = None
        self._last: dict[str, tuple[int, Any]] = {}

    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        return default_head_dir(info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{METHOD} needs the target model from the engine (the drafter shares its embeddings); "
                             "run it in specplug's reference engine")
        if self._bound is info.model and self.head is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no trained ReDrafter head at {folder}. Make one: `specplug train data --model MODEL` then "
                f"`specplug train {METHOD} --model MODEL`, or pass the option head=DIR")
        from specplug.kit.heads import load_head

        head, meta = load_head(folder, info.model)
        if meta.method != METHOD:
            raise ValueError(f"the head in {folder} was trained for {meta.method!r}; {METHOD} needs a ReDrafter head "
                             f"(`specplug train {METHOD} ...`)")
        self.head, self.meta, self._bound = head.eval(), meta, info.model
        self._last.clear()

    def finish_request(self, request_id: str) -> None:
        self._last.pop(request_id, None)

    def propose(self, request: ProposalRequest) -> Draft:
        if self.head is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        states = request.hidden_states
        if states is not None and states.shape[0]:
            self._last[request.request_id] = (request.hidden_start + states.shape[0] - 1, states[-1, 0])
        position, hidden = self._last.get(request.request_id, (-1, None))
        if hidden is None or position != len(request.token_ids) - 2:
            return Draft.empty()
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens)
        if size < 1:
            return Draft.empty()
        beams = self.beam_search(hidden, int(request.token_ids[-1]))
        tokens, parents = beams_to_tree(beams, size)
        return Draft(np.array(tokens, dtype=np.int64), np.array(parents, dtype=np.int64))

    def beam_search(self, hidden, root: int) -> list[tuple[int, ...]]:
        """The ``beam_width`` best continuations of ``beam_length`` tokens, best first."""
        import torch

        head = self.head
        param = head.lm_head.weight
        width = self.options.beam_width
        length = self.options.beam_length or head.draft_length
        with torch.inference_mode():
            h = hidden[None].to(device=param.device, dtype=param.dtype)
            state = head.step(None, torch.tensor([root], device=param.device))  # [B, H]
            scores = torch.zeros(1, dtype=torch.float64, device=param.device)
            beams = torch.zeros(1, 0, dtype=torch.long, device=param.device)
            for _ in range(length):
                logp = torch.log_softmax(head.logits(state, h).float(), dim=-1).double()  # [B, V]
                total = (scores[:, None] + logp).reshape(-1)
                best = total.topk(min(width, total.numel())).indices
                rows, tokens = best // logp.shape[-1], best % logp.shape[-1]
                scores, beams = total[best], torch.cat([beams[rows], tokens[:, None]], dim=1)
                state = head.step(state[rows], tokens)
        return [tuple(int(t) for t in beam) for beam in beams]
