"""specplug hooks of the ``sam_decoding`` plugin (entry point ``sam_decoding`` in group ``specplug``)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec

from specplug_sam_decoding.proposer import SamOptions, SamProposer


@hookimpl
def specplug_register_methods(register):
    # A chain per step whose length is bounded only by the text after the match (max_k None).
    register(MethodSpec(id="sam_decoding", factory=SamProposer, options=SamOptions, max_k=None, tree=False))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_sam_decoding.bench import KIND  # nothing heavy at import; the runner loads torch and vLLM

    register(KIND)
