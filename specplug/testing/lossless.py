"""The lossless check every method and verifier must pass: greedy speculative output equals plain greedy.

- :func:`assert_greedy_lossless` decodes prompts in specplug's reference engine, plainly and with a
  proposer's drafts under each verifier in :data:`LOSSLESS_VERIFIERS`, and fails at the first
  token that differs.
- :func:`greedy_reference`: plain greedy continuations, e.g. for :class:`~specplug.testing.NoisyOracleProposer`.
- :func:`total_accepted`: draft tokens accepted over a lossless check's results (a check alone
  also passes with a proposer that never drafts).
"""

from __future__ import annotations

__all__ = ["LOSSLESS_VERIFIERS", "assert_greedy_lossless", "greedy_reference", "total_accepted"]

#: The built-in verifiers whose greedy output must equal plain greedy decoding.
LOSSLESS_VERIFIERS = ("greedy_match", "speculative_sampling", "tree_verification")


def greedy_reference(model, prompts, max_new_tokens: int, eos_token_id=None, tokenizer=None) -> dict:
    """``{tuple(prompt): plain greedy continuation}`` from the reference engine (no proposer)."""
    from specplug.engine import ReferenceEngine

    engine = ReferenceEngine(model, tokenizer, eos_token_id=eos_token_id)
    results = engine.generate(prompts, max_new_tokens=max_new_tokens)
    return {tuple(int(t) for t in p): r.token_ids for p, r in zip(prompts, results)}


def assert_greedy_lossless(
    proposer_factory,
    model,
    prompts,
    k: int = 4,
    max_new_tokens: int = 24,
    verifiers=LOSSLESS_VERIFIERS,
    tokenizer=None,
    eos_token_id=None,
):
    """Check that greedy decoding with ``proposer_factory()``'s drafts emits exactly plain greedy
    decoding's tokens under every verifier in ``verifiers``; returns ``{verifier: results}``.

    Plugin packages call this from their tests with their own proposer and a tiny model::

        assert_greedy_lossless(lambda: MyProposer(MyOptions()), tiny_llama(), [[1, 2, 3, 1, 2]], k=4)
    """
    from specplug.engine import ReferenceEngine

    engine = ReferenceEngine(model, tokenizer, eos_token_id=eos_token_id)
    plain = engine.generate(prompts, max_new_tokens=max_new_tokens)
    out = {}
    for verifier in verifiers:
        results = engine.generate(prompts, proposer_factory(), verifier, k=k, max_new_tokens=max_new_tokens)
        for i, (a, b) in enumerate(zip(plain, results)):
            if a.token_ids != b.token_ids:
                diverge = next((j for j, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), None)
                raise AssertionError(
                    f"verifier {verifier!r}, prompt {i}: speculative output differs from plain greedy decoding "
                    f"(first difference at new token {diverge}; lengths {len(a.token_ids)} vs {len(b.token_ids)})\n"
                    f"plain:       {a.token_ids}\nspeculative: {b.token_ids}"
                )
            if a.finish_reason != b.finish_reason:
                raise AssertionError(f"verifier {verifier!r}, prompt {i}: finish {a.finish_reason} vs {b.finish_reason}")
        out[verifier] = results
    return out


def total_accepted(results_by_verifier) -> int:
    """Draft tokens accepted over every verifier and prompt of an :func:`assert_greedy_lossless` result.

    Tests assert it is positive: a lossless check alone also passes with a proposer that never drafts.
    """
    return sum(r.stats.accepted for results in results_by_verifier.values() for r in results)
