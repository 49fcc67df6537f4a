"""specplug hooks of the ``amphista`` plugin (entry point ``amphista`` in group ``specplug``): the method
and its training objective (``specplug train amphista``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_amphista.proposer import AmphistaOptions, AmphistaProposer


def _objective(cfg):
    from specplug_amphista.objective import AmphistaObjective  # torch loads when training starts

    return AmphistaObjective(**cfg.options)


def _head_class():
    from specplug_amphista.heads import AmphistaHeads

    return AmphistaHeads


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k is the tree's node count; the depth is bounded by the heads.
    register(MethodSpec(id="amphista", factory=AmphistaProposer, options=AmphistaOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="amphista", factory=_objective, default_lr=3e-4, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="Amphista: K heads with bi-directional attention among them (Auto-embedding Block) over staged adaptation layers.",
        cost="two decoder layers over the context + K head MLPs + one encoder layer over the K heads (~7M parameters\n"
             "for SmolLM2), the target's LM head shared: a little above EAGLE per token; --budget default trains 60 min.",
        cli_options=(
            click.option("--num-heads", type=int, default=4, show_default=True, help="K drafting heads (draft depths)."),
        ),
    ))
