"""Hook specifications: the ways a plugin extends specplug.

A plugin is a module (or object) with functions decorated by :data:`specplug.hookimpl` and named as
below. It is found through the entry-point group ``specplug`` of its distribution::

    [project.entry-points.specplug]
    pld = "specplug_pld.plugin"

A hookimpl may accept fewer arguments than the spec (pluggy's opt-in arguments), so specs can grow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from specplug.bench.kind import BenchKindSpec
    from specplug.methods import MethodSpec, VerifierSpec
    from specplug.train.spec import ObjectiveSpec
    from specplug.taxonomy import MethodCard

hookspec = pluggy.HookspecMarker("specplug")
hookimpl = pluggy.HookimplMarker("specplug")


@hookspec
def specplug_register_methods(register: Callable[[MethodSpec], None]) -> None:
    """Register drafting methods.

    Called once when the registry is built (on the first lookup in a process).

    :param register: call ``register(MethodSpec(...))`` once per method. A method's id must be a
        catalogue card's id, or the spec must bring its own card; an id registered twice is an
        error that names both plugins.
    :returns: nothing; results go through ``register``.
    """


@hookspec
def specplug_register_verifiers(register: Callable[[VerifierSpec], None]) -> None:
    """Register refinement rules (verifiers).

    Called once when the registry is built, like :func:`specplug_register_methods`.

    :param register: call ``register(VerifierSpec(...))`` once per verifier.
    :returns: nothing; results go through ``register``.
    """


@hookspec
def specplug_register_cards(register: Callable[[MethodCard], None]) -> None:
    """Register catalogue cards that have no implementation of their own.

    For plugins that extend the catalogue (a survey of another field, a lab's internal methods).
    Called once when the registry is built, before methods are matched to cards.

    :param register: call ``register(MethodCard(...))`` once per card.
    :returns: nothing; results go through ``register``.
    """


@hookspec
def specplug_register_commands(cli: click.Group) -> None:
    """Add commands to the ``specplug`` command line.

    Called once when the CLI starts, after the built-in commands exist.

    :param cli: the root ``click.Group``; add commands or groups with ``cli.add_command``.
    :returns: nothing.
    """


@hookspec
def specplug_register_objectives(register: Callable[[ObjectiveSpec], None]) -> None:
    """Register training objectives: how a method's drafter (a head, a draft model) is trained.

    Called once when the registry is built. Each objective becomes a ``specplug train <id>``
    command run by the training kit's generic trainer (:mod:`specplug.train.trainer`: data,
    checkpoints, progress, held-out accuracy); the objective builds the drafter, computes its loss
    and exports it (see :class:`specplug.train.spec.ObjectiveSpec`).

    :param register: call ``register(ObjectiveSpec(...))`` once per objective. The id is the
        method's id; an id registered twice is an error that names both plugins.
    :returns: nothing; results go through ``register``.
    """


@hookspec
def specplug_register_bench_kinds(register: Callable[[BenchKindSpec], None]) -> None:
    """Register benchmark suite kinds: what a ``kind = "..."`` in a suite file runs.

    Called once when the registry is built. A kind reads its settings from the suite's
    ``[bench]`` table, runs, and writes ``specplug-bench/1`` documents through the benchmark kit
    (:mod:`specplug.bench`); see :class:`specplug.bench.kind.BenchKindSpec`.

    :param register: call ``register(BenchKindSpec(...))`` once per kind; a kind registered twice
        is an error that names both plugins.
    :returns: nothing; results go through ``register``.
    """
