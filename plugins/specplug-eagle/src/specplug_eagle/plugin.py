"""specplug hooks of the ``eagle`` plugin (entry point ``eagle`` in group ``specplug``): the methods
eagle, eagle2 and eagle3, the EAGLE and EAGLE-3 training objectives (``specplug train eagle|eagle3``)
and the ``trained_heads`` benchmark suite kind."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.commands import layer_ids
from specplug.train.spec import ObjectiveSpec

from specplug_eagle.proposer import (
    Eagle2Options,
    Eagle2Proposer,
    Eagle3Options,
    Eagle3Proposer,
    EagleOptions,
    EagleProposer,
)

_NEEDS = frozenset({Need.target_hidden_states})


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the head can draft as deep as the engine's k (or the tree_size option) allows.
    register(MethodSpec(id="eagle", factory=EagleProposer, options=EagleOptions, max_k=None, tree=True, needs=_NEEDS))
    register(MethodSpec(id="eagle2", factory=Eagle2Proposer, options=Eagle2Options, max_k=None, tree=True, needs=_NEEDS))
    register(MethodSpec(id="eagle3", factory=Eagle3Proposer, options=Eagle3Options, max_k=None, tree=True, needs=_NEEDS))


# -- training (torch loads when training starts) ----------------------------------------------------
def _eagle_objective(cfg):
    from specplug_eagle.objectives import EagleObjective

    return EagleObjective(eval_positions=cfg.eval_positions, **cfg.options)


def _eagle3_objective(cfg):
    from specplug_eagle.objectives import Eagle3Objective

    options = dict(cfg.options)
    return Eagle3Objective(eval_positions=cfg.eval_positions, aux_layers=options.pop("layers", None), **options)


def _eagle_head():
    from specplug_eagle.eagle_head import EagleHead

    return EagleHead


def _eagle3_head():
    from specplug_eagle.eagle3_head import Eagle3Head

    return Eagle3Head


def _eagle3_layers(num_layers: int) -> list[int]:
    """EAGLE-3's low, mid and high layers (vLLM's default); none for a target under three layers."""
    from specplug_eagle.eagle3_head import default_aux_layers

    return default_aux_layers(num_layers) if num_layers >= 3 else []


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="eagle", factory=_eagle_objective, default_lr=3e-4, head_class=_eagle_head,
        data_layers=lambda num_layers: [-1],
        help="EAGLE: one decoder layer over (feature, next-token embedding); feature regression + cross-entropy.",
        cost="one decoder layer + the target's frozen LM head (49152 x 576) in the loss: 60 min.",
        cli_options=(
            click.option("--targets", type=click.Choice(["soft", "hard"]), default="soft", show_default=True,
                         help="soft: the target's distribution at t+1 (EAGLE's code); hard: the next token."),
        ),
    ))
    register(ObjectiveSpec(
        id="eagle3", factory=_eagle3_objective, default_lr=3e-4, head_class=_eagle3_head, data_layers=_eagle3_layers,
        help="EAGLE-3: fused low/mid/high features, training-time test, reduced draft vocabulary.",
        cost="one decoder layer, training-time test over --ttt-steps steps, 8k draft vocabulary:\n"
             "~4,900 tok/s per step against an 8k vocabulary (~750 tok/s full vocabulary); 60 min.",
        cli_options=(
            click.option("--ttt-steps", type=int, default=7, show_default=True,
                         help="Training-time-test unroll steps (EAGLE-3's 7; at least the positions vLLM drafts)."),
            click.option("--targets", type=click.Choice(["soft", "hard"]), default="soft", show_default=True,
                         help="soft: the target's distribution over the draft vocabulary (EAGLE-3); hard: the next token."),
            click.option("--draft-vocab", type=int, default=8192, show_default=True,
                         help="Draft vocabulary: the N most frequent tokens."),
            click.option("--layers", default=None, callback=layer_ids,
                         help="Low, mid, high target layers (default: those in the data, vLLM's 2,L/2,L-3)."),
        ),
    ))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_eagle.trained_heads_bench import KINDS  # no torch at import; the runner loads it

    for kind in KINDS:
        register(kind)
