"""specplug hooks of the ``redrafter`` plugin (entry point ``redrafter`` in group ``specplug``): the
method and its training objective (``specplug train redrafter``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_redrafter.proposer import ReDrafterOptions, ReDrafterProposer


def _objective(cfg):
    from specplug_redrafter.objective import ReDrafterObjective  # torch loads when training starts

    return ReDrafterObjective(**cfg.options)


def _head_class():
    from specplug_redrafter.drafter import ReDrafterHead

    return ReDrafterHead


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="redrafter", factory=ReDrafterProposer, options=ReDrafterOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="redrafter", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="ReDrafter: a recurrent draft head over the target's state, distilled from the target's distribution.",
        cost="an RNN cell + residual MLP over [2H] + one full-vocabulary LM head (28M parameters), unrolled\n"
             "--draft-length steps with the target's LM head as teacher; --budget default trains 60 min.",
        cli_options=(
            click.option("--draft-length", type=int, default=4, show_default=True, help="Steps trained (beam length)."),
            click.option("--num-layers", type=int, default=2, show_default=True, help="Residual MLP layers over [2H]."),
        ),
    ))
