"""specplug hooks of the ``mlp_speculator`` plugin (entry point ``mlp_speculator`` in group
``specplug``): the method and its training objective (``specplug train mlp_speculator``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_mlp_speculator.proposer import MLPSpeculatorOptions, MLPSpeculatorProposer


def _objective(cfg):
    from specplug_mlp_speculator.objective import MLPSpeculatorObjective  # torch loads when training starts

    return MLPSpeculatorObjective(**cfg.options)


def _head_class():
    from specplug_mlp_speculator.speculator import MLPSpeculatorHead

    return MLPSpeculatorHead


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k bounds the tree; the depth is bounded by the stages.
    register(MethodSpec(id="mlp_speculator", factory=MLPSpeculatorProposer, options=MLPSpeculatorOptions, max_k=None,
                        tree=True, needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="mlp_speculator", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="IBM's MLP speculator: n_predict MLP stages over (previous state, previous token), cross-entropy per stage.",
        cost="n_predict stages, each an embedding and a full-vocabulary head (2 x 28M parameters for\n"
             "SmolLM2): about Medusa's cost per token; --budget default trains 60 min.",
        cli_options=(click.option("--n-predict", type=int, default=3, show_default=True,
                                  help="Stages (draft positions)."),),
    ))
