"""specplug hooks of the ``hydra`` plugin (entry point ``hydra`` in group ``specplug``): the method,
its training objective (``specplug train hydra``) and the ``head_family`` benchmark suite kind."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_hydra.proposer import HydraOptions, HydraProposer


def _objective(cfg):
    from specplug_hydra.objective import HydraObjective  # torch loads when training starts

    return HydraObjective(**cfg.options)


def _head_class():
    from specplug_hydra.hydra_heads import HydraHeads

    return HydraHeads


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k is the tree's node count; the depth is bounded by the heads.
    register(MethodSpec(id="hydra", factory=HydraProposer, options=HydraOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="hydra", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="Hydra++: K sequentially dependent heads (state + embeddings of the tokens before), teacher distillation.",
        cost="K MLP heads + K full-vocabulary LM heads (K x 28M parameters) and the target's LM head\n"
             "for the teacher: a little above Medusa per token; --budget default trains 60 min.",
        cli_options=(
            click.option("--num-heads", type=int, default=4, show_default=True, help="K heads (draft positions)."),
            click.option("--num-layers", type=int, default=4, show_default=True, help="MLP layers per head (Hydra++: 4)."),
            click.option("--objective", type=click.Choice(["teacher", "hard"]), default="teacher", show_default=True,
                         help="teacher: distil the target's distribution (Hydra++); hard: the token (Hydra)."),
        ),
    ))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_hydra.head_family_bench import KIND  # no torch at import; the runner loads it

    register(KIND)
