import numpy as np
from pydantic import Field

from specplug import BaseProposer, Draft, MethodCard, MethodOptions, MethodSpec, hookimpl


class BigramOptions(MethodOptions):
    max_tokens: int = Field(default=4, ge=1, le=16, description="Most tokens drafted per step.")


class BigramProposer(BaseProposer):
    """Follows, from the root, the token that came after the latest earlier occurrence of each token."""

    def __init__(self, options: BigramOptions):
        self.options = options

    def propose(self, request):
        history = request.token_ids
        draft = []
        last = int(history[-1])
        for _ in range(min(self.options.max_tokens, request.max_tokens)):
            hits = np.flatnonzero(history[:-1] == last)
            if hits.size == 0:
                break
            last = int(history[hits[-1] + 1])
            draft.append(last)
        return Draft.chain(draft)


CARD = MethodCard(
    id="hello_bigram",
    name="Hello bigram",
    summary="Drafts by following the latest bigram of each token; a test plugin, not a method from the literature.",
    generation="ngram",
    refinement="single_pass_linear",
    acceptance="exact_greedy",
    lossless=True,
    training="none",
    status="preview",
)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="hello_bigram", factory=BigramProposer, options=BigramOptions, card=CARD, max_k=16))
