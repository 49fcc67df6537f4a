"""What a plugin registers to make its drafter trainable: :class:`ObjectiveSpec`, and the
:class:`Objective` protocol the generic trainer (:mod:`specplug.train.trainer`) drives.

Torch-free, so the registry can hold objectives without importing torch; the objective itself
(built by ``factory`` when training starts) and the head class (returned by ``head_class`` when a
head is built or loaded) import what they need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Objective", "ObjectiveSpec"]


class Objective(Protocol):
    """What the trainer asks of an objective (one instance per training run).

    Required: ``positions`` (draft positions in the held-out accuracy), ``layers``, ``build``,
    ``loss``, ``evaluate``. Optional (the trainer uses them when present): ``settings``,
    ``metadata_extra``, ``export``.
    """

    positions: int

    def layers(self, data_layers: list[int], cfg: Any) -> list[int]:
        """The target layers (of those the data folder stores) the head reads."""

    def build(self, target: Any, data: Any, cfg: Any) -> Any:
        """A fresh head (a :class:`specplug.kit.heads.HeadExport` module) for ``target``; ``data`` is
        the :class:`~specplug.train.dataset.TrainingData` (say, to pick a reduced vocabulary)."""

    def loss(self, head: Any, batch: Any, generator: Any = None) -> tuple[Any, dict[str, float]]:
        """``(loss tensor or None when the batch has no target, {part: value})``; ``generator``
        seeds any noise, so a resumed run trains like an uninterrupted one."""

    def evaluate(self, head: Any, batch: Any) -> tuple[float, list[int], list[int]]:
        """Held-out ``(loss, correct per draft position, count per draft position)``."""

    def settings(self) -> dict[str, Any]:
        """The objective's own settings: a run resumes only a checkpoint made with the same ones
        (they are part of the run's identity, and recorded in the head's metadata)."""

    def metadata_extra(self) -> dict[str, Any]:
        """``extra`` of the exported head's :class:`~specplug.kit.heads.HeadMetadata`."""

    def export(self, head: Any, out: Any, metadata: Any, cfg: Any) -> None:
        """More exports after the head is saved in ``out`` (say, another format beside it)."""


@dataclass(frozen=True)
class ObjectiveSpec:
    """A training objective as a plugin registers it (hook ``specplug_register_objectives``).

    :param id: the method id the trained drafter serves (``specplug train <id>``); also the
        ``method`` of the head folders it writes.
    :param factory: builds the :class:`Objective` from the
        :class:`~specplug.train.trainer.TrainConfig` (its ``options`` hold the values of
        ``cli_options``; refuse unknown ones).
    :param help: the command's help (its first line shows in ``specplug train --help``).
    :param default_lr: the learning rate when ``--lr`` is not given.
    :param cli_options: extra ``click.option`` decorators for this objective's command; their values
        reach the factory in ``TrainConfig.options``.
    :param head_class: returns the head class (imported lazily), for
        :func:`specplug.kit.heads.load_head` and :func:`~specplug.kit.heads.save_random_head`;
        ``None`` for an objective whose drafter is not a head folder.
    :param cost: what training costs (say, for SmolLM2-135M on 2 CPU cores), a few short lines for
        ``specplug train --help``.
    :param data_layers: ``data_layers(num_layers) -> layer ids`` the objective's data needs for a
        target of ``num_layers`` layers; ``specplug train data`` stores the union over the
        registered objectives unless ``--layers`` is given.
    """

    id: str
    factory: Callable[[Any], Any]
    help: str = ""
    default_lr: float = 3e-4
    cli_options: tuple = field(default_factory=tuple)
    cost: str = ""
    head_class: Callable[[], type] | None = None
    data_layers: Callable[[int], list[int]] | None = None
