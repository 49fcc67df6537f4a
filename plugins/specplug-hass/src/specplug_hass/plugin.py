"""specplug hooks of the ``hass`` plugin (entry point ``hass`` in group ``specplug``): the method and
its training objective (``specplug train hass``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_hass.proposer import HassOptions, HassProposer


def _objective(cfg):
    from specplug_hass.objective import HassObjective  # torch loads when training starts

    return HassObjective(eval_positions=cfg.eval_positions, **cfg.options)


def _head_class():
    from specplug_hass.head import hass_head_class

    return hass_head_class()


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="hass", factory=HassProposer, options=HassOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="hass", factory=_objective, default_lr=3e-4, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="HASS: an EAGLE head with harmonized context alignment and top-K objective distillation.",
        cost="EAGLE's head unrolled --align-steps times, each step with the frozen LM head for the\n"
             "token loss and the teacher: about align_steps x EAGLE per token; 60 min.",
        cli_options=(
            click.option("--align-steps", type=int, default=3, show_default=True,
                         help="Harmonized context alignment steps (the head reads its own features after step 0)."),
            click.option("--topk", type=int, default=10, show_default=True, help="K of the top-K distillation."),
            click.option("--topk-weight", type=float, default=1.0, show_default=True, help="Weight of the top-K term."),
        ),
    ))
