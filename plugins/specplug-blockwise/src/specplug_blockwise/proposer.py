"""Blockwise parallel decoding in specplug's reference engine (Stern et al., arXiv 1811.03115).

The paper's decoding loop is *predict, verify, accept*: ``p_1 .. p_k`` propose a block from one
decoder output, the base model scores the block in one pass, and the longest prefix on which the
proposals equal the base model's own greedy choices is kept. In specplug's engine the target's
verification pass gives the state of the last accepted position and the bonus token (``p_1``'s
prediction: the root); the heads ``p_2 .. p_k`` read that same state and propose the rest of the
block, a chain of ``k - 1`` tokens after the root. That is the paper's "combined scoring and
proposal" (the next block is proposed from the verification pass's own output, with no extra
target call). Greedy matching is exact (the paper's lossless setting); its approximate top-k and
distance-based acceptance (lossy) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["BlockwiseOptions", "BlockwiseProposer"]

METHOD = "blockwise"


def default_head_dir(target_model) -> Path:
    """The folder ``specplug train blockwise`` writes for ``target_model``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), METHOD)


class BlockwiseOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder of trained blockwise heads; default: the folder `specplug train blockwise` writes "
        "for the target in specplug's cache")
    tree_size: int | None = Field(None, ge=1, description="most draft tokens per step (at most block_size - 1); "
                                  "default: the engine's k")


class BlockwiseProposer(BaseProposer):
    """Proposes the rest of a block with ``p_2 .. p_k``; see the module docstring."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)

    def __init__(self, options: BlockwiseOptions | None = None) -> None:
        self.options = options or BlockwiseOptions()
        self.heads = None
        self.meta: Any = None
        self._bound = None
        self._last: dict[str, tuple[int, Any]] = {}  # request -> (position, final hidden state [H])

    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        return default_head_dir(info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{METHOD} needs the target model from the engine (the heads share its LM head); "
                             "run it in specplug's reference engine")
        if self._bound is info.model and self.heads is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no trained blockwise heads at {folder}. Make them: `specplug train data --model MODEL` then "
                f"`specplug train {METHOD} --model MODEL`, or pass the option head=DIR")
        from specplug.kit.heads import load_head

        heads, meta = load_head(folder, info.model)
        if meta.method != METHOD:
            raise ValueError(f"the head in {folder} was trained for {meta.method!r}; {METHOD} needs blockwise heads "
                             f"(`specplug train {METHOD} ...`)")
        self.heads, self.meta, self._bound = heads.eval(), meta, info.model
        self._last.clear()

    def finish_request(self, request_id: str) -> None:
        self._last.pop(request_id, None)

    def propose(self, request: ProposalRequest) -> Draft:
        import torch

        if self.heads is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        states = request.hidden_states
        if states is not None and states.shape[0]:
            self._last[request.request_id] = (request.hidden_start + states.shape[0] - 1, states[-1, 0])
        position, hidden = self._last.get(request.request_id, (-1, None))
        if hidden is None or position != len(request.token_ids) - 2:
            return Draft.empty()  # no state of the position before the root (a one-token prompt's first step)
        size = min(request.max_tokens, self.options.tree_size or request.max_tokens, self.heads.block_size - 1)
        if size < 1:
            return Draft.empty()
        param = self.heads.heads[0].fc1.weight
        with torch.inference_mode():
            h = hidden.to(device=param.device, dtype=param.dtype)
            tokens = [int(self.heads.offset_logits(j, h).argmax()) for j in range(2, size + 2)]
        return Draft.chain(tokens)
