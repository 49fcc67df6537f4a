"""Test helpers: tiny random Llama models and conformance checks for proposers and verifiers.

Tiny models are built on the fly in a second or two, so tests need no downloads:

- :func:`tiny_llama`: a random ``LlamaForCausalLM`` (float32, eval mode) with a small vocabulary.
- :func:`tiny_model_dir`: a tiny random Llama saved as a HF folder with SmolLM2's tokenizer
  (vocabulary 49152), so vLLM and ``AutoTokenizer`` can load it.

Conformance helpers (plugin packages call these from their own tests) are defined further down,
after the engine they drive. At the end, helpers the plugins' engine tests share:

- :func:`repetitive_prompts`, :func:`spec_bench_chat_prompts`: prompts for lossless checks.
- :func:`total_accepted`: draft tokens accepted over an :func:`assert_greedy_lossless` result.
- :func:`run_vllm_job`: one real vLLM engine in its own process
  (``python -m specplug.integrations.vllm.engine_runner``), JSON in and out.

The toy target simulator for fast property tests is in :mod:`specplug.testing.toy`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "LOSSLESS_VERIFIERS",
    "NoisyOracleProposer",
    "RandomProposer",
    "assert_greedy_lossless",
    "greedy_reference",
    "repetitive_prompts",
    "run_vllm_job",
    "spec_bench_chat_prompts",
    "tiny_llama",
    "tiny_model_dir",
    "total_accepted",
]

#: The built-in verifiers whose greedy output must equal plain greedy decoding.
LOSSLESS_VERIFIERS = ("greedy_match", "speculative_sampling", "tree_verification")


def tiny_llama(
    vocab_size: int = 128,
    seed: int = 0,
    num_layers: int = 2,
    hidden: int = 64,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate: int = 128,
    max_positions: int = 512,
    eos_token_id: int | None = None,
    init_std: float = 0.5,
) -> Any:
    """A random ``LlamaForCausalLM`` in float32, eval mode.

    ``init_std`` is larger than Llama's default (0.02) so that the random model's next-token
    distributions are peaked and varied (a near-uniform model would make every test trivially pass
    or fail). Same ``seed`` and arguments give the same weights.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        initializer_range=init_std,
        tie_word_embeddings=False,
        eos_token_id=eos_token_id,
        bos_token_id=None,
        pad_token_id=None,
        attn_implementation="eager",
    )
    config.rope_theta = 10000.0
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.to(torch.float32).eval()


def tiny_model_dir(path: str | Path, seed: int = 0, num_layers: int = 2, hidden: int = 64) -> Path:
    """Save a tiny random Llama with SmolLM2's tokenizer (vocab 49152) into ``path`` and return it.

    The tokenizer files come from the converted SmolLM2 folder (converted once, see
    :mod:`specplug.models`). The folder loads with ``AutoModelForCausalLM`` and with vLLM.
    """
    import json

    from specplug.models import fetch_smollm2

    source = fetch_smollm2()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = tiny_llama(vocab_size=49152, seed=seed, num_layers=num_layers, hidden=hidden, num_heads=4,
                       num_kv_heads=2, intermediate=2 * hidden, max_positions=2048, eos_token_id=2, init_std=0.02)
    model.config.bos_token_id = 1
    model.config.architectures = ["LlamaForCausalLM"]
    model.save_pretrained(str(path), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, path / name)
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" not in cfg and isinstance(rope, dict) and "rope_theta" in rope:
        cfg["rope_theta"] = rope["rope_theta"]  # vLLM reads it at the top level
    cfg.pop("attn_implementation", None)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return path


# -- conformance helpers --------------------------------------------------------------------------


class NoisyOracleProposer:
    """A test proposer that drafts the true greedy continuation, corrupted at random.

    ``references`` maps a prompt (tuple of ids) to its plain greedy continuation (see
    :func:`greedy_reference`). Each drafted token is replaced by a random id with probability
    ``corrupt``, so accept lengths vary from 0 to the whole draft. With ``tree=True`` the draft is a
    tree: the oracle chain plus, at random depths, sibling branches of random tokens (and the chain
    itself is sometimes not the first child), which exercises tree masks and cache gathering.
    Drafts never exceed ``request.max_tokens``.
    """

    needs = frozenset()

    def __init__(self, references: dict, vocab_size: int, corrupt: float = 0.3, tree: bool = False, seed: int = 0):
        import numpy as np

        self.references = {tuple(int(t) for t in k): list(v) for k, v in references.items()}
        self.vocab_size = vocab_size
        self.corrupt = corrupt
        self.tree = tree
        self.rng = np.random.default_rng(seed)
        self.live: dict[str, list[int]] = {}
        self.calls: list[str] = []  # lifecycle events, for contract checks

    def start_request(self, request_id, prompt_ids):
        self.live[request_id] = self.references[tuple(int(t) for t in prompt_ids)]
        self.calls.append(f"start:{request_id}")

    def _token(self, true_token: int) -> int:
        if self.rng.random() < self.corrupt:
            return int(self.rng.integers(self.vocab_size))
        return int(true_token)

    def propose(self, request):
        from specplug.protocols import Draft

        ref = self.live[request.request_id]
        pos = len(request.token_ids) - request.num_prompt_tokens
        budget = request.max_tokens
        truth = ref[pos : pos + budget]
        if not self.tree:
            return Draft.chain([self._token(t) for t in truth])
        tokens: list[int] = []
        parents: list[int] = []
        parent = -1
        for t in truth:
            if len(tokens) >= budget:
                break
            if self.rng.random() < 0.4 and len(tokens) + 2 <= budget:  # a decoy sibling before the chain node
                tokens.append(int(self.rng.integers(self.vocab_size)))
                parents.append(parent)
            tokens.append(self._token(t))
            parents.append(parent)
            parent = len(tokens) - 1
        return Draft(tokens, parents)

    def observe(self, feedback):
        assert feedback.request_id in self.live, "observe for a request that was not started"
        self.calls.append(f"observe:{feedback.request_id}")

    def finish_request(self, request_id):
        self.live.pop(request_id, None)
        self.calls.append(f"finish:{request_id}")


class RandomProposer:
    """Drafts random chains or trees (almost always rejected): checks the rejection paths."""

    needs = frozenset()

    def __init__(self, vocab_size: int, tree: bool = False, seed: int = 0):
        import numpy as np

        self.vocab_size, self.tree = vocab_size, tree
        self.rng = np.random.default_rng(seed)

    def start_request(self, request_id, prompt_ids):
        return None

    def propose(self, request):
        from specplug.protocols import Draft

        n = int(self.rng.integers(0, request.max_tokens + 1))
        tokens = self.rng.integers(self.vocab_size, size=n)
        if not self.tree:
            return Draft.chain(tokens)
        parents = [int(self.rng.integers(-1, i)) for i in range(n)]
        return Draft(tokens, parents)

    def observe(self, feedback):
        return None

    def finish_request(self, request_id):
        return None


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


def limit_torch_threads(threads: int = 1) -> None:
    """Run torch on ``threads`` threads, when torch is installed (test conftests call this).

    Tiny test models are dominated by per-op overhead, which extra threads only add to; on a small
    shared machine one thread was 10-35x faster for them. Benchmarks choose their own count.
    """
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def repetitive_prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """``n`` token-id prompts, each a short random phrase said three times (plus its first two tokens),
    so that lookup-based drafters have something to look up from step one. Ids are in ``[3, vocab)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        phrase = rng.integers(3, vocab, size=int(rng.integers(3, 7))).tolist()
        prompts.append(phrase * 3 + phrase[:2])
    return prompts


def total_accepted(results_by_verifier) -> int:
    """Draft tokens accepted over every verifier and prompt of an :func:`assert_greedy_lossless` result.

    Tests assert it is positive: a lossless check alone also passes with a proposer that never drafts.
    """
    return sum(r.stats.accepted for results in results_by_verifier.values() for r in results)


def spec_bench_chat_prompts(tokenizer, n: int) -> list[list[int]]:
    """Token ids of one Spec-Bench prompt from each of the first ``n`` categories, in ``tokenizer``'s chat
    template (first turn only). Finds question.jsonl with :func:`specplug.bench.prompts.spec_bench_path`."""
    from specplug.bench.prompts import spec_bench_path

    rows = [json.loads(line) for line in spec_bench_path().read_text().splitlines() if line.strip()]
    picked, seen = [], set()
    for row in rows:
        if row["category"] in seen:
            continue
        seen.add(row["category"])
        text = tokenizer.apply_chat_template([{"role": "user", "content": row["turns"][0]}], tokenize=False, add_generation_prompt=True)
        picked.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(picked) == n:
            break
    return picked


def run_vllm_job(tmp_path: str | Path, job: dict, timeout: float = 600) -> dict:
    """Run one vLLM engine job in a fresh process and return its JSON result.

    The job format is documented in :mod:`specplug.integrations.vllm.engine_runner`. The process gets
    VLLM_CPU_KVCACHE_SPACE=1, VLLM_ENABLE_V1_MULTIPROCESSING=0 (so one process is one engine) and a
    VLLM_CACHE_ROOT inside ``tmp_path``. Skips the test when vllm is not installed; fails it, with the
    end of the engine's output, when the engine writes no result or crashes.
    """
    import pytest

    pytest.importorskip("vllm")
    tmp = Path(tmp_path)
    tmp.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    job_path, out_path = tmp / f"job-{stamp}.json", tmp / f"out-{stamp}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               VLLM_CACHE_ROOT=str(tmp / "vllm-cache"))
    proc = subprocess.run([sys.executable, "-m", "specplug.integrations.vllm.engine_runner", str(job_path), str(out_path)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if not out_path.exists():
        pytest.fail(f"vLLM engine exited {proc.returncode} without a result:\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(out_path.read_text())
    if "crash" in result:
        pytest.fail(f"vLLM engine crashed:\n{result['crash'][-4000:]}")
    return result
