"""specplug hooks of the ``eesd`` plugin: the method and its training objective (``specplug train eesd``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_eesd.proposer import EesdOptions, EesdProposer


def _objective(cfg):
    from specplug_eesd.objective import EesdObjective

    options = dict(cfg.options)
    return EesdObjective(exit_layer=options.pop("exit_layer", None), adapter_layers=options.pop("adapter_layers", 1))


def _head_class():
    from specplug_eesd.head import EarlyExitHead

    return EarlyExitHead


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="eesd", factory=EesdProposer, options=EesdOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="eesd", factory=_objective, default_lr=1e-3, head_class=_head_class,
        # half the target's layers: the middle layer the default data already stores for EAGLE-3
        data_layers=lambda num_layers: [num_layers // 2],
        help="EESD: an early-exit adapter after the target's first N layers, self-distilled on the target's tokens.",
        cost="one residual adapter (hidden x hidden) on a stored layer; the target's LM head is frozen;\n"
             "the cheapest head to train here.",
        cli_options=(click.option("--exit-layer", type=int, default=None, help="N: exit after this many layers (default: half)."),
                     click.option("--adapter-layers", type=int, default=1, show_default=True, help="Residual adapter blocks.")),
    ))
