"""What a plugin registers: a drafting method or a verifier, with its options.

Classes:

- :class:`MethodOptions`: base for a method's options (a pydantic model; unknown keys are errors).
- :class:`MethodSpec`: a drafting method: its card (or the id of a catalogue card), a proposer factory,
  its options model and what it needs from an engine.
- :class:`VerifierSpec`: a refinement rule with its card and factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from specplug.protocols import Need, Proposer, Verifier
from specplug.taxonomy import MethodCard

__all__ = ["MethodOptions", "MethodSpec", "OptionsError", "VerifierSpec"]


class OptionsError(ValueError):
    """Options that do not fit a method's options model. The message names each bad key and the fix."""


class MethodOptions(BaseModel):
    """Base for a method's options. Subclasses declare fields with ``Field(description=..., ge=...)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _validate_options(owner: str, model: type[BaseModel], options: Mapping[str, Any] | BaseModel | None) -> BaseModel:
    if isinstance(options, model):
        return options
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as err:
        allowed = ", ".join(sorted(model.model_fields)) or "none"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(options)'}: {e['msg']}" for e in err.errors()
        )
        raise OptionsError(f"invalid options for {owner!r}: {problems}. Allowed options: {allowed}.") from None


@dataclass(frozen=True)
class MethodSpec:
    """A drafting method as a plugin registers it.

    :param id: the method id; equal to a catalogue card's id unless ``card`` is given.
    :param factory: builds a fresh :class:`~specplug.protocols.Proposer` from validated options.
    :param options: the pydantic model of the method's options.
    :param card: the method's own card, for methods the catalogue does not list. ``None`` means the
        catalogue card with this id.
    :param max_k: the most draft tokens the method can produce per step, or ``None`` for no limit.
    :param tree: whether the proposer may return tree drafts (engines without tree attention take
        the draft's first root-to-leaf chain).
    """

    id: str
    factory: Callable[[Any], Proposer]
    options: type[MethodOptions] = MethodOptions
    card: MethodCard | None = None
    max_k: int | None = None
    tree: bool = False
    needs: frozenset[Need] = field(default_factory=frozenset)

    def validate_options(self, options: Mapping[str, Any] | BaseModel | None = None) -> MethodOptions:
        return _validate_options(self.id, self.options, options)  # type: ignore[return-value]

    def build(self, options: Mapping[str, Any] | BaseModel | None = None) -> Proposer:
        """A new proposer with validated options."""
        return self.factory(self.validate_options(options))


@dataclass(frozen=True)
class VerifierSpec:
    """A refinement rule as a plugin registers it (see :class:`MethodSpec` for the fields)."""

    id: str
    factory: Callable[[Any], Verifier]
    options: type[MethodOptions] = MethodOptions
    card: MethodCard | None = None

    def validate_options(self, options: Mapping[str, Any] | BaseModel | None = None) -> MethodOptions:
        return _validate_options(self.id, self.options, options)  # type: ignore[return-value]

    def build(self, options: Mapping[str, Any] | BaseModel | None = None) -> Verifier:
        return self.factory(self.validate_options(options))
