"""The plugin module named by the entry point: it registers the method and its card."""

from __future__ import annotations

from specplug import MethodSpec, hookimpl
from specplug.taxonomy import (
    AcceptanceRule,
    Engine,
    GenerationStrategy,
    Implementation,
    MethodCard,
    RefinementStrategy,
    Status,
    TrainingCost,
)
from specplug_hello.proposer import BigramOptions, BigramProposer

# --8<-- [start:card]
# The method is not in the survey's catalogue, so the plugin brings its own card.
CARD = MethodCard(
    id="hello_bigram",
    name="Bigram cache (example)",
    summary="Proposes the token that last followed the current one in the request, then repeats the "
    "guess; the worked example of specplug's plugin guide.",
    generation=GenerationStrategy.ngram,
    refinement=RefinementStrategy.single_pass_linear,
    acceptance=AcceptanceRule.exact_greedy,
    lossless=True,
    training=TrainingCost.none,
    status=Status.preview,
    implementations=[
        Implementation(engine=Engine.specplug_reference, package="specplug-hello"),
        # Level 1: the method needs nothing from the engine beyond token ids (MethodSpec.needs is empty).
        Implementation(
            engine=Engine.vllm_specplug, package="specplug-hello",
            config={"model": "specplug.vllm.hello_bigram"}, level=1,
        ),
    ],
    related=["pld"],
)
# --8<-- [end:card]


# --8<-- [start:hook]
@hookimpl
def specplug_register_methods(register):
    register(
        MethodSpec(
            id="hello_bigram",
            factory=BigramProposer,  # called with validated BigramOptions
            options=BigramOptions,
            card=CARD,
            max_k=64,
        )
    )
# --8<-- [end:hook]
