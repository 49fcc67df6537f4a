"""specplug hooks of specplug-block-verification: the ``block_verification`` verifier (lossless)."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodOptions, VerifierSpec


def _build(options: MethodOptions):
    from specplug_block_verification.verifier import BlockVerifier

    return BlockVerifier()


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="block_verification", factory=_build))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_block_verification import bench, bench_reference

    register(bench.KIND)
    register(bench_reference.KIND)
