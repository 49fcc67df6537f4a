"""specplug hooks of specplug-opt-tree: the ``opt_tree`` method."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_opt_tree.proposer import OptTreeOptions, OptTreeProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model: the derived draft is a view of (or is checked against) the target
    register(MethodSpec(id="opt_tree", factory=OptTreeProposer, options=OptTreeOptions, max_k=None, tree=True,
                        needs=frozenset({Need.target_model})))
