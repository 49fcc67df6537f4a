"""Token Recycling in the reference engine: greedy output identical to plain decoding (tree drafts)."""

import pytest

from specplug.testing import assert_greedy_lossless, tiny_llama
from specplug_recycling.proposer import RecyclingOptions, RecyclingProposer

PROMPTS = [[5, 17, 3, 99, 42, 7], [1, 2, 3, 4, 5, 6, 7, 8], [64, 64, 12, 90]]


def test_greedy_identical_tiny_llama_and_the_matrix_helps():
    model = tiny_llama(vocab_size=128, seed=7)
    proposer = RecyclingProposer(RecyclingOptions(width=4, tree_nodes=12))
    # one proposer for all runs: the matrix stays warm across requests, as in the paper
    out = assert_greedy_lossless(lambda: proposer, model, PROMPTS, k=12, max_new_tokens=40)
    stats = [r.stats for r in out["tree_verification"]]
    assert all(s.drafted > 0 for s in stats)
    assert sum(s.accepted for s in stats) > 0
    # every committed token (prompt and output) has a recycled row: the matrix saw every step
    for prompt, r in zip(PROMPTS, out["tree_verification"]):
        for t in (prompt + r.token_ids)[len(prompt) - 1 : -1]:
            assert (proposer.matrix.rows[t] >= 0).all()


@pytest.mark.slow
def test_smollm2_greedy_identical():
    from specplug.models import load_model

    model, tok = load_model("smollm2-135m")
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
               for q in ("List the numbers from 1 to 20.", "Name three colours and say why you like them.")]
    prompts = [p if isinstance(p, list) else p["input_ids"] for p in prompts]
    out = assert_greedy_lossless(lambda: RecyclingProposer(RecyclingOptions(tree_nodes=16)), model, prompts, k=16,
                                 max_new_tokens=32, verifiers=("tree_verification",), tokenizer=tok)
    assert sum(r.stats.accepted for r in out["tree_verification"]) > 0
