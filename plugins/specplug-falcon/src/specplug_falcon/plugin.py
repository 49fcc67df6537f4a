"""specplug hooks of the ``falcon`` plugin (entry point ``falcon`` in group ``specplug``): the method and
its training objective (``specplug train falcon``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_falcon.proposer import FalconOptions, FalconProposer


def _objective(cfg):
    from specplug_falcon.objective import FalconObjective  # torch loads when training starts

    return FalconObjective(**cfg.options)


def _head_class():
    from specplug_falcon.drafter import FalconDrafter

    return FalconDrafter


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k is the tree's node count; the drafter runs one forward per block of k depths.
    register(MethodSpec(id="falcon", factory=FalconProposer, options=FalconOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="falcon", factory=_objective, default_lr=3e-4, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="FALCON: a semi-autoregressive drafter (k tokens per forward), Coupled Sequential Glancing Distillation.",
        cost="LSTM + one decoder layer over (feature, next-token embedding) (~9M parameters for SmolLM2), two forwards\n"
             "per step (the glancing pass has no gradient): about EAGLE's cost x1.5; --budget default trains 60 min.",
        cli_options=(
            click.option("--block-size", type=int, default=2, show_default=True,
                         help="k: tokens drafted per forward (FALCON's k_mask; the paper uses 2)."),
            click.option("--glancing/--no-glancing", default=True, show_default=True,
                         help="CSGD's glancing step (off: plain distillation, for ablations)."),
            click.option("--glance-steps", type=int, default=2000, show_default=True,
                         help="steps over which the glancing ratio decays from 0.45 to 0.1."),
        ),
    ))
