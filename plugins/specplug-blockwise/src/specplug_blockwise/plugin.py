"""specplug hooks of the ``blockwise`` plugin (entry point ``blockwise`` in group ``specplug``): the
method and its training objective (``specplug train blockwise``)."""

import click

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.train.spec import ObjectiveSpec

from specplug_blockwise.proposer import BlockwiseOptions, BlockwiseProposer


def _objective(cfg):
    from specplug_blockwise.objective import BlockwiseObjective  # torch loads when training starts

    return BlockwiseObjective(**cfg.options)


def _head_class():
    from specplug_blockwise.heads import BlockwiseHeads

    return BlockwiseHeads


@hookimpl
def specplug_register_methods(register):
    # max_k is None: the heads bound the chain (block_size - 1 tokens after the root).
    register(MethodSpec(id="blockwise", factory=BlockwiseProposer, options=BlockwiseOptions, max_k=None,
                        needs=frozenset({Need.target_hidden_states})))


@hookimpl
def specplug_register_objectives(register):
    register(ObjectiveSpec(
        id="blockwise", factory=_objective, default_lr=1e-3, head_class=_head_class,
        data_layers=lambda num_layers: [-1],
        help="Blockwise parallel decoding: k-1 feed-forward heads with a residual, the target's shared LM head.",
        cost="k-1 feed-forward layers (2 x 576 x 2304 parameters each for SmolLM2) + the frozen shared LM\n"
             "head in the loss: the cheapest head per token; --budget default trains 60 min.",
        cli_options=(
            click.option("--block-size", type=int, default=4, show_default=True,
                         help="k: the target's p_1 and k-1 heads (draft tokens per step)."),
            click.option("--ffn-mult", type=int, default=4, show_default=True,
                         help="Each head's feed-forward width, in multiples of the hidden size."),
        ),
    ))
