"""The PyTorch reference engine: any transformers causal LM with any Proposer and Verifier.

Public API::

    from specplug.engine import ReferenceEngine, run_method, GenerationResult, GenerationStats, TargetModel

    engine = ReferenceEngine(model, tokenizer=None, eos_token_id=None, feedback_topk=8)
    results = engine.generate(
        prompts,                 # list[list[int]]: token ids per request
        proposer=None,           # a Proposer, or None for plain decoding (the baseline)
        verifier=None,           # a Verifier, a verifier id, or None = "tree_verification"
        k=5,                     # most draft nodes per step (>= 1)
        max_new_tokens=64,
        sampling=SamplingParams(),  # temperature 0 = greedy; top_p, top_k
        seed=0,                  # request i samples with torch.Generator().manual_seed(seed + i)
    )                            # -> list[GenerationResult]
    r = results[0]
    r.token_ids                  # new tokens only (ends with EOS when finish_reason == "eos")
    r.text                       # decoded with the tokenizer (None without one)
    r.finish_reason              # "eos" | "length"
    r.stats.drafted, r.stats.accepted, r.stats.steps, r.stats.new_tokens, r.stats.accept_lengths
    r.stats.mat, r.stats.acceptance_rate, r.stats.draft_s, r.stats.verify_s, r.stats.tokens_per_s
    GenerationStats.merge(r.stats for r in results)   # totals over a batch
    run_method("pld", {"max_ngram": 3}, model="smollm2-135m", prompts=[...], k=5)  # proposer from the registry

Low-level (custom decoding loops, e.g. Lookahead): ``engine.target`` is a :class:`TargetModel`
holding one request's KV cache::

    engine.target.reset()
    logits = engine.target.forward(input_ids,            # [n] ids appended to the cache
                                   position_ids=None,    # [n]; default cache_len + arange(n)
                                   attention_bias=None,  # [n, cache_len + n] additive (0 / dtype min); default causal
                                   parents=None,         # or: the last len(parents) inputs form a tree
                                   logits_to_keep=0)     # -> float32 [n (or logits_to_keep), V]
    engine.target.cache_len
    engine.target.rollback(keep_len)                     # drop positions >= keep_len
    engine.target.keep(positions)                        # keep only these cache positions, in order

Requests run one after another (a loop, not a batched forward), each with a fresh cache.
Models: load with :func:`specplug.models.load_model` (float32 on CPU, bfloat16 on CUDA).
"""

from specplug.engine.engine import ReferenceEngine, resolve_verifier, run_method
from specplug.engine.stats import GenerationResult, GenerationStats
from specplug.kit.target import TargetModel, causal_bias, tree_bias, tree_positions

__all__ = [
    "GenerationResult",
    "GenerationStats",
    "ReferenceEngine",
    "TargetModel",
    "causal_bias",
    "resolve_verifier",
    "run_method",
    "tree_bias",
    "tree_positions",
]
