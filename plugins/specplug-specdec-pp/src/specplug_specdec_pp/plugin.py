"""specplug hooks of the ``specdec_pp`` plugin: the method and its training objective (``specplug train specdec_pp``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_specdec_pp.proposer import SpecDecPPOptions, SpecDecPPProposer


def _objective(cfg):
    from specplug.models.derive import parse_layers

    from specplug_specdec_pp.objective import SpecDecPPObjective

    options = dict(cfg.options)
    layers = options.pop("draft_layers", None)
    if layers is not None:
        layers = parse_layers(layers, 10_000)  # checked against the target when the head is built
    return SpecDecPPObjective(layers, options.pop("depth", 2), options.pop("reject_weight", 1.0))


def _head_class():
    from specplug_specdec_pp.head import AcceptanceHead

    return AcceptanceHead


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="specdec_pp", factory=SpecDecPPProposer, options=SpecDecPPOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="specdec_pp", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="SpecDec++: an acceptance-prediction head on the draft model (layers of the target), weighted BCE.",
        cost="a small residual MLP; each batch also runs the frozen draft model over the sequences.",
        cli_options=(click.option("--draft-layers", default=None, help="The draft: layers of the target, e.g. 0-11,18-29 (default: first half)."),
                     click.option("--depth", type=int, default=2, show_default=True, help="Residual blocks of the head."),
                     click.option("--reject-weight", type=float, default=1.0, show_default=True,
                                  help="BCE weight of the rejected class.")),
    ))
