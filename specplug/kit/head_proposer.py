"""What every proposer drafting from a trained head over the target's final hidden state shares.

Medusa, Hydra, Blockwise, ReDrafter, the MLP speculator, FALCON and Amphista all draft from a head that
``specplug train METHOD`` wrote for one target, and all read the same input: the target's final (post-norm)
hidden state of the position before the root. :class:`TrainedHeadProposer` holds that common part once:

- where the head is (the ``head`` option, else the folder ``specplug train METHOD`` writes for the target);
- loading it for the bound target, refusing a missing head, a head for another model (``load_head``'s
  fingerprint check) or a head for another method, each with the command that makes the right one;
- per request, the final hidden state of the position before the root, forgotten when the request ends.

A subclass sets :attr:`method` and :attr:`head_description` and writes ``propose``, starting from
:meth:`root_state`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Need, ProposalRequest, TargetInfo

__all__ = ["TrainedHeadProposer", "default_head_folder"]


def default_head_folder(target_model, method: str) -> Path:
    """The folder ``specplug train METHOD`` writes for ``target_model`` in specplug's cache."""
    from specplug.kit.heads import default_head_dir, target_fingerprint

    return default_head_dir(target_fingerprint(target_model), method)


class TrainedHeadProposer(BaseProposer):
    """A proposer over a head trained for the bound target; see the module docstring."""

    method: ClassVar[str]  # the head's method id, as `specplug train METHOD` records it
    head_description: ClassVar[str]  # what the head is, for messages: "Hydra heads", "an MLP speculator"
    elsewhere: ClassVar[str] = ""  # where else the head runs, for the message when no model is bound
    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})
    hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)

    def __init__(self, options) -> None:
        self.options = options
        self.head = None
        self.meta: Any = None
        self._bound = None
        self._last: dict[str, tuple[int, Any]] = {}  # request -> (position, final hidden state [H])

    def head_folder(self, info: TargetInfo) -> Path:
        if getattr(self.options, "head", None):
            return Path(self.options.head).expanduser()
        return default_head_folder(info.model, self.method)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{self.method} needs the target model from the engine (to check the head was trained "
                             f"for it); run it in specplug's reference engine{self.elsewhere}")
        if self._bound is info.model and self.head is not None:
            return
        folder = self.head_folder(info)
        if not folder.exists():
            raise FileNotFoundError(
                f"no {self.head_description} at {folder}. Make them: `specplug train data --model MODEL` then "
                f"`specplug train {self.method} --model MODEL`, or pass the option head=DIR")
        from specplug.kit.heads import load_head

        head, meta = load_head(folder, info.model)
        if meta.method != self.method:
            raise ValueError(f"the head in {folder} was trained for {meta.method!r}; {self.method} needs "
                             f"{self.head_description} (`specplug train {self.method} ...`)")
        self.head, self.meta, self._bound = head.eval(), meta, info.model
        self._last.clear()
        self.head_loaded()

    def head_loaded(self) -> None:
        """Called after a (new) head is bound: a subclass drops what it derived from the old one."""

    def finish_request(self, request_id: str) -> None:
        self._last.pop(request_id, None)

    def root_state(self, request: ProposalRequest):
        """The target's final hidden state [H] of the position before the root, or None when there is none
        (a one-token prompt's first step): the engine passes each step's new states, and the last is kept."""
        if self.head is None:
            raise RuntimeError(f"{self.method}: bind_target was not called; the engine must bind a target first")
        states = request.hidden_states
        if states is not None and states.shape[0]:
            self._last[request.request_id] = (request.hidden_start + states.shape[0] - 1, states[-1, 0])
        position, hidden = self._last.get(request.request_id, (-1, None))
        if hidden is None or position != len(request.token_ids) - 2:
            return None
        return hidden
