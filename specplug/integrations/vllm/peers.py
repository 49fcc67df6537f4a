"""vLLM's own proposers as step drafters for :mod:`specplug.bench.replay`, run offline without an engine.

Each function returns a ``step(sampled, lengths, token_ids, request_ids, prompt_lens) -> drafts``
callable in the replay's calling convention (vLLM's: one draft per row of a ``[rows, max_len]``
token buffer). :func:`vllm_config` stands in for the parts of a ``VllmConfig`` those proposers and
specplug's ``custom_class`` adapter read.

vllm is imported inside the functions only, so importing this module stays cheap.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

__all__ = ["ngram_proposer", "vllm_config", "vllm_ngram", "vllm_suffix", "vllm_version"]


def vllm_config(k: int, max_model_len: int, max_num_seqs: int, options: dict | None = None,
                ngram: tuple[int, int] = (1, 3), suffix_factor: float = 1.0) -> SimpleNamespace:
    """The parts of a ``VllmConfig`` that vLLM's ngram and suffix proposers and specplug's adapter read."""
    return SimpleNamespace(
        speculative_config=SimpleNamespace(
            num_speculative_tokens=k, prompt_lookup_min=ngram[0], prompt_lookup_max=ngram[1],
            suffix_decoding_max_tree_depth=24, suffix_decoding_max_cached_requests=10000,
            suffix_decoding_max_spec_factor=suffix_factor, suffix_decoding_min_token_prob=0.1,
        ),
        model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: 1 << 30),
        scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
        parallel_config=SimpleNamespace(tensor_parallel_size=1),
        additional_config={"specplug": {"options": options or {}}},
    )


def vllm_ngram(k: int, max_model_len: int, max_num_seqs: int, ngram: tuple[int, int] = (1, 3)):
    """vLLM's ``NgramProposer`` (numba) with n-grams ``ngram[0]..ngram[1]``."""
    from vllm.v1.spec_decode.ngram_proposer import NgramProposer

    proposer = NgramProposer(vllm_config(k, max_model_len, max_num_seqs, ngram=ngram))

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        return proposer.propose(k, sampled, lengths, token_ids)

    return step


def vllm_suffix(k: int, max_model_len: int, max_num_seqs: int, factor: float = 1.0):
    """vLLM's ``SuffixDecodingProposer`` (ArcticInference's suffix tree; needs ``arctic-inference``),
    driven with the request ids and prompt lengths it expects; ``factor`` is its max spec factor."""
    from vllm.v1.spec_decode.suffix_decoding import SuffixDecodingProposer

    proposer = SuffixDecodingProposer(vllm_config(k, max_model_len, max_num_seqs, suffix_factor=factor))

    def step(sampled, lengths, token_ids, request_ids, prompt_lens):
        batch = SimpleNamespace(req_ids=list(request_ids), num_tokens_no_spec=lengths, token_ids_cpu=token_ids,
                                req_id_to_index={r: i for i, r in enumerate(request_ids)},
                                num_prompt_tokens=np.asarray(prompt_lens))
        return proposer.propose(k, batch, sampled)

    return step


def ngram_proposer(config):
    """vLLM's own ``NgramProposer`` built from a (stand-in) ``VllmConfig``, for benchmarks that time
    its ``propose(k, sampled, lengths, token_ids)`` beside specplug's adapter on the same arrays."""
    from vllm.v1.spec_decode.ngram_proposer import NgramProposer

    return NgramProposer(config)


def vllm_version() -> str:
    """The installed vLLM's version string (results documents record it)."""
    import vllm

    return vllm.__version__
