"""REST in the reference engine: greedy output identical to plain decoding, with real acceptance."""

import numpy as np
import pytest

from specplug.testing import assert_greedy_lossless, greedy_reference, tiny_llama
from specplug_rest.datastore import Datastore, write_datastore
from specplug_rest.proposer import RestOptions, RestProposer

TOK = {"name": "tiny-random", "vocab_size": 128, "fingerprint": "sha256:tiny"}
PROMPTS = [[5, 17, 3, 99, 42, 7], [1, 2, 3, 4, 5, 6, 7, 8], [64, 64, 12, 90]]


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=128, seed=3)


def test_greedy_identical_and_accepts_retrieved_text(model, tmp_path):
    refs = greedy_reference(model, PROMPTS, max_new_tokens=32)
    # a datastore of the model's own continuations (plus noise documents) for other prompts and these
    rng = np.random.default_rng(0)
    docs = [list(p) + list(c) for p, c in refs.items()] + [rng.integers(0, 128, 40).tolist() for _ in range(20)]
    write_datastore(tmp_path / "ds", docs, TOK)
    store = Datastore.open(tmp_path / "ds")

    def factory():
        return RestProposer(store, RestOptions(datastore=str(tmp_path / "ds"), max_nodes=6, min_suffix_len=1))

    out = assert_greedy_lossless(factory, model, PROMPTS, k=6, max_new_tokens=32)
    stats = [r.stats for r in out["tree_verification"]]
    assert sum(s.accepted for s in stats) > 0.5 * sum(s.new_tokens for s in stats)  # retrieval hits


def test_greedy_identical_with_an_unrelated_datastore(model, tmp_path):
    rng = np.random.default_rng(1)
    write_datastore(tmp_path / "ds", [rng.integers(0, 128, 200).tolist() for _ in range(5)], TOK)
    store = Datastore.open(tmp_path / "ds")
    assert_greedy_lossless(
        lambda: RestProposer(store, RestOptions(datastore=str(tmp_path / "ds"), min_suffix_len=1)), model, PROMPTS, k=5
    )


@pytest.mark.slow
def test_smollm2_greedy_identical(tmp_path, corpus, rest_cli):
    from click.testing import CliRunner

    from specplug.models import load_model
    from specplug_rest import plugin

    result = CliRunner().invoke(rest_cli, ["rest", "build-datastore", str(corpus), str(tmp_path / "ds"), "-m", "smollm2-135m"])
    assert result.exit_code == 0, result.output
    model, tok = load_model("smollm2-135m")
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        for q in ("How do I make a simple tomato sauce?", "Write a Python function that adds two numbers.")
    ]
    prompts = [p if isinstance(p, list) else p["input_ids"] for p in prompts]
    out = assert_greedy_lossless(
        lambda: plugin.build_proposer(RestOptions(datastore=str(tmp_path / "ds"), model="smollm2-135m")),
        model, prompts, k=8, max_new_tokens=24, verifiers=("tree_verification",), tokenizer=tok,
    )
    assert sum(r.stats.accepted for r in out["tree_verification"]) > 0
