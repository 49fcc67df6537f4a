"""specplug hooks of the ``sps`` plugin (entry point ``sps`` in group ``specplug``): the method and the
``model_drafters`` suite kind."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need

from specplug_draft.proposer import DraftOptions, DraftProposer


@hookimpl
def specplug_register_methods(register):
    # needs target_model: the draft is bound to the target (its tokenizer is checked, a 'layers' draft
    # runs the target's weights) before the first request. specplug's vLLM custom_class adapter cannot
    # give that, so it refuses sps at engine start; vLLM runs the method natively (draft_model).
    register(MethodSpec(id="sps", factory=DraftProposer, options=DraftOptions, max_k=None, tree=False,
                        needs=frozenset({Need.target_model})))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_draft.bench import KIND, VLLM_KIND

    register(KIND)
    register(VLLM_KIND)
