"""specplug hooks of specplug-sequoia: the ``sequoia`` method, the ``sequoia_swr`` verifier (sampling
without replacement, with its own card) and the ``trees`` benchmark suite kind."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodOptions, MethodSpec, VerifierSpec
from specplug.protocols import Need
from specplug.taxonomy import (
    AcceptanceRule,
    Engine,
    GenerationStrategy,
    Implementation,
    MethodCard,
    RefinementStrategy,
    Scope,
    Status,
    TrainingCost,
)

from specplug_sequoia.proposer import SequoiaOptions, SequoiaProposer

NEEDS = frozenset({Need.target_model})

SWR_CARD = MethodCard(
    id="sequoia_swr",
    name="Sequoia's sampling-without-replacement verification",
    summary="Verifies a token tree whose siblings were sampled without replacement from the draft: accept with "
    "min(1, p/q), else take the residual of p and remove the rejected token from q before the next sibling. "
    "Exact for the target's distribution; Sequoia's verifier (arXiv 2402.12374, Algorithm 1).",
    scope=Scope.verification,
    generation=GenerationStrategy.independent_drafter,
    refinement=RefinementStrategy.single_pass_tree,
    acceptance=AcceptanceRule.speculative_sampling,
    lossless=True,
    training=TrainingCost.none,
    status=Status.preview,
    implementations=[Implementation(
        engine=Engine.specplug_reference, package="specplug-sequoia",
        notes="Registered by specplug-sequoia as a verifier; use it with sequoia's draw=without_replacement at "
              "temperature > 0. Greedy: greedy match; drafts without q: SpecInfer's one-hot rule.")],
    related=["sequoia", "specinfer", "tree_verification"],
    quickstart=[
        "bash scripts/wheelhouse.sh",
        'pip install --find-links dist/wheelhouse "specplug[engine]" specplug-sequoia',
        'specplug generate --verifier sequoia_swr --method sequoia --model smollm2-135m -o draft_layers=0-3 '
        '-o budget=8 --k 8 --compare --json "PROMPT"',
    ],
)


def _swr(options):
    from specplug_sequoia.verifier import SequoiaVerifier

    return SequoiaVerifier(options)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="sequoia", factory=SequoiaProposer, options=SequoiaOptions, max_k=None, tree=True, needs=NEEDS))


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="sequoia_swr", factory=_swr, options=MethodOptions, card=SWR_CARD))


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_sequoia.bench import KIND  # torch loads when the suite runs

    register(KIND)
