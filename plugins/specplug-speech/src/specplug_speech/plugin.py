"""specplug hooks of specplug-speech: the ``distil_whisper`` and ``kangaroo`` (Whisper) methods, ``specplug speech`` and the ``speech`` bench kind."""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_speech.kangaroo import KangarooOptions, KangarooProposer
from specplug_speech.proposer import DistilWhisperOptions, DistilWhisperProposer


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="distil_whisper", factory=DistilWhisperProposer, options=DistilWhisperOptions, tree=False,
                        needs=frozenset({Need.target_model})))
    register(MethodSpec(id="kangaroo", factory=KangarooProposer, options=KangarooOptions, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_commands(cli):
    from specplug_speech.cli import speech

    cli.add_command(speech)


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_speech.bench import KIND

    register(KIND)
