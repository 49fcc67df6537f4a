"""Training the heads (Medusa, EAGLE, EAGLE-3) on a frozen target, on CPU: ``specplug train``.

A pipeline of commands whose artifacts live in the cache, keyed by the target's fingerprint:

1. ``specplug train data`` (:mod:`specplug.train.data`): the target's own greedy responses to the
   training prompts (:mod:`specplug.train.prompts`: Spec-Bench minus the benchmark prompts) and its
   hidden states, in resumable safetensors shards with a manifest;
2. ``specplug train medusa|eagle|eagle3`` (:mod:`specplug.train.trainer`,
   :mod:`specplug.train.objectives`): each head as its paper trains it, with a time budget,
   resumable checkpoints and held-out accuracy per draft position, exported in vLLM's format
   (:mod:`specplug.heads`).

Nothing here is imported at specplug's start; torch loads when a command runs.
"""
