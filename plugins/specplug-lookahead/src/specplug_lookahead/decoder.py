"""The one-forward Lookahead decoding loop, on specplug's reference engine.

Each step is one target forward over ``[uncached committed tokens..., root, verification trie,
lookahead window]`` with the mask of :mod:`specplug_lookahead.layout`. Then:

1. the verifier (``tree_verification`` by default: greedy match at temperature 0, lossless
   multi-branch speculative sampling otherwise) picks the accepted path through the trie and the
   bonus token, from the rows of the root and the trie nodes;
2. the KV cache keeps the context plus the accepted path and drops everything else (the window too);
3. the last level's outputs become the new iterate; every column plus its new output is an
   ``N``-gram for the pool, and the levels shift up by one.

This is not a :class:`~specplug.protocols.Proposer` (the lookahead branch rides in the verification
forward, which a proposer cannot reach); it drives :class:`specplug.engine.TargetModel` directly and
returns the engine's own :class:`~specplug.engine.GenerationResult`, so its figures compare
one-to-one with any proposer's. Requests run one after another.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from specplug.engine import GenerationResult, GenerationStats, ReferenceEngine, resolve_verifier
from specplug.protocols import SamplingParams, Verifier
from specplug_lookahead.layout import StepLayout, build_layout
from specplug_lookahead.pool import NGramPool
from specplug_lookahead.proposer import LookaheadOptions

__all__ = ["LookaheadDecoder", "forward_layout"]


def forward_layout(target, pending: Sequence[int], layout: StepLayout) -> torch.Tensor:
    """One forward of ``pending`` (uncached committed tokens before the root, causal) plus ``layout``;
    returns the float32 logits of the layout's inputs ``[T, V]``."""
    p, t = len(pending), len(layout.tokens)
    past = target.cache_len
    allow = torch.zeros(p + t, past + p + t, dtype=torch.bool)  # [p + t, past + p + t]
    allow[:, :past] = True
    allow[:p, past : past + p] = torch.ones(p, p, dtype=torch.bool).tril()
    allow[p:, past : past + p] = True
    allow[p:, past + p :] = torch.from_numpy(layout.allow)
    bias = torch.zeros(p + t, past + p + t, dtype=target.dtype).masked_fill(~allow, torch.finfo(target.dtype).min)
    positions = torch.cat([
        torch.arange(past, past + p, dtype=torch.long),
        past + p + torch.from_numpy(layout.positions),
    ])  # [p + t]
    ids = list(pending) + layout.tokens.tolist()
    return target.forward(ids, position_ids=positions, attention_bias=bias, logits_to_keep=t)


class LookaheadDecoder:
    """Lookahead decoding with one target forward per step.

    :param engine: a :class:`~specplug.engine.ReferenceEngine` (its target, EOS ids and tokenizer are used).
    :param options: window ``W``, n-gram size ``N``, verification candidates ``G``, pool seeding.
    """

    def __init__(self, engine: ReferenceEngine, options: LookaheadOptions | None = None):
        self.engine = engine
        self.options = options or LookaheadOptions()

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int = 64,
        sampling: SamplingParams | None = None,
        verifier: Verifier | str | None = None,
        seed: int = 0,
    ) -> list[GenerationResult]:
        sampling = sampling or SamplingParams()
        rule = resolve_verifier(verifier)
        out = []
        for i, prompt in enumerate(prompts):
            ids = self.engine._check_prompt(i, prompt)
            out.append(self._one(ids, max_new_tokens, sampling, rule, torch.Generator().manual_seed(seed + i), seed + i))
        return out

    def _one(self, prompt: list[int], max_new_tokens: int, sampling, verifier, generator, seed: int) -> GenerationResult:
        o = self.options
        target = self.engine.target
        target.reset()
        levels = o.ngram - 1
        rng = np.random.default_rng(seed)
        window = np.asarray(rng.choice(prompt, size=(levels, o.window)), dtype=np.int64)  # [N - 1, W] initial guesses
        pool = NGramPool(o.ngram, o.guesses)
        indexed = 0
        committed = list(prompt)
        new: list[int] = []
        stats = GenerationStats()
        finish = "length"
        limit = max_new_tokens
        if target.max_positions:
            limit = min(limit, target.max_positions - len(prompt))
        start = time.perf_counter()
        while len(new) < limit:
            t0 = time.perf_counter()
            if o.pool_from_context:
                pool.add_sequence(committed, start=indexed)
                indexed = max(0, len(committed) - o.ngram + 1)
            budget = limit - len(new) - 1  # this step emits accepted + 1 tokens
            root = committed[-1]
            candidates = [c[:budget] for c in pool.candidates(root)[: o.guesses]] if budget > 0 else []
            cached = target.cache_len
            pending = committed[cached:-1]
            use_window = o.window > 0
            if target.max_positions and cached + len(pending) + levels + o.window + o.ngram >= target.max_positions:
                use_window = False  # near the model's last position: verification only
            layout = build_layout(root, [c for c in candidates if c], window if use_window else None)
            stats.draft_s += time.perf_counter() - t0

            t0 = time.perf_counter()
            logits = forward_layout(target, pending, layout)  # [T, V]
            draft = layout.draft
            result = verifier.verify(logits[: len(draft) + 1], draft, sampling, generator)
            base = cached + len(pending) + 1  # cache length through the root
            accepted = list(result.accepted_nodes)
            if accepted == list(range(len(accepted))):
                target.rollback(base + len(accepted))
            else:
                target.keep(list(range(base)) + [base + n for n in accepted])
            stats.verify_s += time.perf_counter() - t0

            t0 = time.perf_counter()
            if use_window:
                fresh = logits[torch.from_numpy(layout.last_level)].argmax(-1).cpu().numpy()  # [W] next iterate
                column_firsts = window[0].copy()
                column_firsts[0] = root
                for f in range(o.window):  # each column top to bottom plus its new output is an N-gram
                    pool.add(int(column_firsts[f]), [int(x) for x in window[1:, f]] + [int(fresh[f])])
                window = np.concatenate([window[1:], fresh[None, :]], axis=0)
            stats.draft_s += time.perf_counter() - t0

            emitted = list(result.tokens)[: limit - len(new)]
            hit = next((j for j, tok in enumerate(emitted) if tok in self.engine.eos_ids), None)
            if hit is not None:
                emitted = emitted[: hit + 1]
            committed += emitted
            new += emitted
            stats.steps += 1
            stats.drafted += len(draft)
            kept = min(len(accepted), len(emitted))
            stats.accepted += kept
            stats.accept_lengths.append(kept)
            if hit is not None:
                finish = "eos"
                break
        stats.new_tokens = len(new)
        stats.wall_s = time.perf_counter() - start
        tok = self.engine.tokenizer
        text = tok.decode(new, skip_special_tokens=True) if tok is not None else None
        return GenerationResult(token_ids=new, stats=stats, finish_reason=finish, text=text)
