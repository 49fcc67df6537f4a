"""specplug hooks of the ``medusa`` plugin (entry point ``medusa`` in group ``specplug``): the
method and its training objective (``specplug train medusa``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_medusa.proposer import MedusaOptions, MedusaProposer


def _objective(cfg):
    from specplug_medusa.objective import MedusaObjective  # torch loads when training starts

    return MedusaObjective(**cfg.options)


def _head_class():
    from specplug_medusa.medusa_heads import MedusaHeads

    return MedusaHeads


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the engine's k is the tree's node count; the depth is bounded by the heads.
    register(MethodSpec(id="medusa", factory=MedusaProposer, options=MedusaOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="medusa", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="Medusa: K residual heads on the final hidden state, cross-entropy per head against the target's distribution.",
        cost="K residual blocks + K full-vocabulary LM heads (K x 28M parameters): the slowest per\n"
             "token; --budget default trains 60 min.",
        cli_options=(
            click.option("--num-heads", type=int, default=5, show_default=True,
                         help="K heads (draft positions; vLLM's k=5 chain needs 5)."),
            click.option("--targets", type=click.Choice(["soft", "hard"]), default="soft", show_default=True,
                         help="soft: the target's own distribution (Medusa-2 self-distillation); hard: the token."),
        ),
    ))
