"""SpecInfer's token tree (Miao et al., ASPLOS 2024, arXiv 2305.09781, Sections 3 and 4).

SpecInfer drafts *several* candidate sequences and merges them into one token tree, so the target
checks them all in one tree-attention forward and shared prefixes are computed once. Here the
candidates are several samplings of one draft (the paper's expansion-based construction): at depth
``d`` every node draws ``expansion[d]`` candidates from the draft.

- **Greedy** (temperature 0): a node's candidates are the draft's ``k`` most likely tokens.
- **Sampling**: a node's candidates are ``k`` i.i.d. draws from its draft distribution ``q``.
  Verification is multi-step speculative sampling (MSS, the paper's Algorithm 2): try the candidates
  in the order drawn, accept ``x`` with ``min(1, p(x)/q(x))``, else ``p <- norm(max(0, p - q))``. It is
  exact only if *every* draw is tried, repeats included: a repeat of a rejected token is rejected
  for sure (its residual mass is 0) but still moves ``p`` on. The merged tree keeps that:

  - the first draw of a token is a node whose children merge the continuations of every draw of
    that token (``m`` draws give ``m * expansion[d + 1]`` i.i.d. draws below it: given the token,
    they are independent samples from ``q(. | token)``, so MSS stays exact and accepts more);
  - every repeat is a childless sibling with the same token, at its place in draw order.

  With that layout the built-in multi-branch verifier (``tree_verification`` /
  ``speculative_sampling``) *is* MSS, and the output is distributed exactly as the target's
  (chi-square tested, with a control that drops the repeats and is rejected).

Nodes are laid out depth by depth, siblings contiguous in draw order, so cutting the tree to its
first ``budget`` nodes keeps a prefix of every node's draws (fewer i.i.d. draws: still exact).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from specplug.kit.trees import TokenTree, TopKDrafter

__all__ = ["merge_draws", "specinfer_tree"]


def merge_draws(draws: Sequence[int]) -> tuple[list[int], list[bool], dict[int, int]]:
    """``(tokens, first, multiplicity)`` for a node's draws in order: each draw kept in place, flagged
    ``first`` when its token was not drawn before; ``multiplicity[token]`` counts its draws."""
    seen: dict[int, int] = {}
    first = []
    for t in draws:
        first.append(t not in seen)
        seen[t] = seen.get(t, 0) + 1
    return [int(t) for t in draws], first, seen


def specinfer_tree(drafter: TopKDrafter, expansion: Sequence[int], budget: int, greedy: bool,
                   generator: torch.Generator | None = None, keep_repeats: bool = True) -> TokenTree:
    """SpecInfer's merged token tree of at most ``budget`` nodes (see the module docstring).

    ``keep_repeats=False`` drops repeated draws (a wrong tree for MSS; the tests' control).
    """
    tokens: list[int] = []
    parents: list[int] = []
    scores: list[float] = []
    q_rows: list[torch.Tensor] = []
    frontier: list[tuple[int, int, float]] = [(-1, 1, 0.0)]  # (node, draws it stands for, cumulative log q)
    calls = 0
    for k in expansion:
        if not frontier or len(tokens) >= budget:
            break
        nodes = [node for node, _, _ in frontier]
        if greedy:
            out = drafter.expand(nodes, tokens, parents, int(k))
        else:
            out = drafter.expand(nodes, tokens, parents, 1, with_dists=True)
        calls += 1
        next_frontier: list[tuple[int, int, float]] = []
        for i, (node, mult, score) in enumerate(frontier):
            if greedy:  # the k most likely tokens: distinct, no q
                draws = [int(t) for t in out.tokens[i][: int(k)]]
                logq = np.log(np.maximum(out.probs[i][: int(k)], 1e-300))
                q_row = None
            else:
                q_row = out.dists[i].float().cpu()
                draws = torch.multinomial(q_row, int(k) * mult, replacement=True, generator=generator).tolist()
                logq = np.log(np.maximum(q_row[draws].double().numpy(), 1e-300))
            kept, first, multiplicity = merge_draws(draws)
            for token, is_first, lq in zip(kept, first, logq):
                if not is_first and not keep_repeats:
                    continue
                if len(tokens) >= budget:
                    break
                tokens.append(token)
                parents.append(node)
                scores.append(score + float(lq))
                if q_row is not None:
                    q_rows.append(q_row)
                if is_first:
                    next_frontier.append((len(tokens) - 1, multiplicity[token], scores[-1]))
        frontier = next_frontier
    q = torch.stack(q_rows) if q_rows else None
    return TokenTree(np.asarray(tokens, dtype=np.int64), np.asarray(parents, dtype=np.int64),
                     np.asarray(scores, dtype=np.float64), calls, q)
