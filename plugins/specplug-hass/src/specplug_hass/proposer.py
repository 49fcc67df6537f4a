"""HASS drafting (Zhang et al., arXiv 2408.15766): EAGLE-2's dynamic tree with a HASS-trained head.

HASS changes only how the EAGLE head is trained (:mod:`specplug_hass.objective`); it drafts as
EAGLE-2 does. So this proposer builds the registry's ``eagle2`` method by id (no import of the eagle
plugin) on the EAGLE folder ``specplug train hass`` writes beside the head (``<head>/eagle``), and
hands every call to it. Verification is the engine's (``tree_verification``): lossless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from specplug.methods import MethodOptions
from specplug.protocols import FINAL_HIDDEN_STATE, BaseProposer, Draft, Need, ProposalRequest, TargetInfo

__all__ = ["HassOptions", "HassProposer"]

METHOD = "hass"


def default_head_dir(target_model) -> Path:
    """The folder ``specplug train hass`` writes for ``target_model``."""
    from specplug.kit.heads import default_head_dir as head_dir
    from specplug.kit.heads import target_fingerprint

    return head_dir(target_fingerprint(target_model), METHOD)


class HassOptions(MethodOptions):
    head: str | None = Field(
        None, description="folder `specplug train hass` wrote (with its eagle/ export); default: its folder for the "
        "target in specplug's cache")
    tree: Literal["dynamic", "chain"] = Field("dynamic", description="EAGLE-2's dynamic tree (HASS's), or a chain")
    tree_size: int | None = Field(None, ge=1, description="most draft nodes per step; default: the engine's k")
    depth: int = Field(5, ge=1, description="dynamic tree: expansions (the deepest a node can be)")
    top_k: int = Field(4, ge=1, description="dynamic tree: children per expanded node and nodes expanded per depth")


class HassProposer(BaseProposer):
    """EAGLE-2 drafting (built by id) over a HASS-trained head; see the module docstring."""

    needs: ClassVar[frozenset[Need]] = frozenset({Need.target_hidden_states})

    def __init__(self, options: HassOptions | None = None) -> None:
        self.options = options or HassOptions()
        self.hidden_state_layers: tuple[int, ...] = (FINAL_HIDDEN_STATE,)
        self.inner: Any = None

    def head_folder(self, info: TargetInfo) -> Path:
        if self.options.head:
            return Path(self.options.head).expanduser()
        return default_head_dir(info.model)

    def bind_target(self, info: TargetInfo) -> None:
        if info.model is None:
            raise ValueError(f"{METHOD} needs the target model from the engine (the head shares its embeddings and LM "
                             "head); run it in specplug's reference engine, or vLLM's native 'eagle' method on <head>/eagle")
        folder = self.head_folder(info)
        if not (folder / "eagle").exists():
            raise FileNotFoundError(
                f"no HASS head at {folder} (with its eagle/ export). Make one: `specplug train data --model MODEL` then "
                f"`specplug train {METHOD} --model MODEL`, or pass the option head=DIR")
        from specplug.kit.heads import HeadMetadata
        from specplug.registry import get_registry

        meta = HeadMetadata.read(folder)
        if meta.method != METHOD:
            raise ValueError(f"the head in {folder} was trained for {meta.method!r}; {METHOD} needs a HASS head "
                             f"(`specplug train {METHOD} ...`)")
        meta.check_target(info.model, folder)
        options = self.options.model_dump()
        options["head"] = str(folder / "eagle")
        if self.inner is None or self.inner.options.head != options["head"]:
            self.inner = get_registry().method("eagle2").build(options)
        self.inner.bind_target(info)
        self.hidden_state_layers = tuple(self.inner.hidden_state_layers)

    def _inner(self):
        if self.inner is None:
            raise RuntimeError(f"{METHOD}: bind_target was not called; the engine must bind a target first")
        return self.inner

    def start_request(self, request_id: str, prompt_ids) -> None:
        self._inner().start_request(request_id, prompt_ids)

    def propose(self, request: ProposalRequest) -> Draft:
        return self._inner().propose(request)

    def observe(self, feedback) -> None:
        self._inner().observe(feedback)

    def finish_request(self, request_id: str) -> None:
        if self.inner is not None:
            self.inner.finish_request(request_id)
