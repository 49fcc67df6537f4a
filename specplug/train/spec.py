"""What a plugin registers to make its drafter trainable: :class:`ObjectiveSpec`.

Torch-free, so the registry can hold objectives without importing torch; the objective itself
(built by ``factory`` when training starts) imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ObjectiveSpec"]


@dataclass(frozen=True)
class ObjectiveSpec:
    """A training objective as a plugin registers it (hook ``specplug_register_objectives``).

    :param id: the method id the trained drafter serves (``specplug train <id>``).
    :param factory: builds the objective from the :class:`~specplug.train.trainer.TrainConfig`.
    :param help: one line for ``specplug train --help``.
    :param default_lr: the learning rate when ``--lr`` is not given.
    :param cli_options: extra ``click.option`` decorators for this objective's command; their values
        reach the factory in ``TrainConfig.options``.
    """

    id: str
    factory: Callable[[Any], Any]
    help: str = ""
    default_lr: float = 3e-4
    cli_options: tuple = field(default_factory=tuple)
