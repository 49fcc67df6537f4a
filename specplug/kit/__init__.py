"""The drafting kit: torch-side pieces that several model drafters share.

Plugins import these modules (they are specplug's public API for method authors); nothing here
imports a plugin, vllm, or (at import time of this package) torch.

- :mod:`specplug.kit.target`: :class:`~specplug.kit.target.TargetModel`, a causal LM with one
  request's KV cache that rolls back (``rollback``, ``keep``) and verifies chains and token trees
  (``causal_bias``, ``tree_bias``, ``tree_positions``: tree attention masks and positions).
- :mod:`specplug.kit.drafting`: :class:`~specplug.kit.drafting.DraftCache` (a draft model's own KV
  cache kept in step with the committed tokens), :class:`~specplug.kit.drafting.ReducedVocab`
  (reduced draft vocabularies and their map back to target ids), ``model_view`` (a layer-skipped
  or reduced-head view sharing the target's weights) and ``draft_chain`` (k tokens drafted
  autoregressively, greedy or sampled with ``q``).
- :mod:`specplug.kit.heads`: trained draft heads' common ground: :class:`~specplug.kit.heads.HeadExport`
  (a head's export in vLLM's layout), :class:`~specplug.kit.heads.HeadMetadata` (``specplug_head.json``)
  and the target fingerprint it checks, ``draft_llama_config``, ``load_head`` / ``save_random_head``
  (the head class of a method comes from its plugin's registered objective) and ``default_head_dir``.
- :mod:`specplug.kit.trees`: token trees over any :class:`~specplug.kit.trees.TopKDrafter` (a drafter
  that gives top-k continuations with probabilities for a batch of tree nodes), numpy only: fixed
  shapes, Sequoia's dynamic-programming shape, EAGLE-2's dynamic tree, OPT-Tree's greedy growth,
  SpecExec's best-first search, EdgeLLM's confidence-adaptive width; positional acceptance profiles.
- :mod:`specplug.kit.tree_drafting`: a draft model as a top-k drafter, the tree methods' shared
  proposer (:class:`~specplug.kit.tree_drafting.TreeProposer`; a derived draft or a trained EAGLE head
  as the source), profiles measured in the reference engine, verify cost per tree size.
- :mod:`specplug.kit.sparse_kv`: :class:`~specplug.kit.sparse_kv.StreamingCache`, a model over a
  StreamingLLM cache (attention sinks plus a recent window, true positions kept) in step with the text,
  for long-context drafters (MagicDec's self-draft, TriForce's draft model).
- :mod:`specplug.kit.slots`: :class:`~specplug.kit.slots.RequestSlots`, request ids mapped to dense
  slots for proposers that keep per-request state in numpy arrays (numpy only, no torch).
"""
