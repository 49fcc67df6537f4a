"""The training kit: train a drafter's head on a frozen target, on CPU: ``specplug train``.

A pipeline of commands whose artifacts live in the cache, keyed by the target's fingerprint:

1. ``specplug train data`` (:mod:`specplug.train.data`): the target's own greedy responses to the
   training prompts (:mod:`specplug.train.prompts`: Spec-Bench minus the benchmark prompts) and its
   hidden states, in resumable safetensors shards with a manifest, read back as batches by
   :mod:`specplug.train.dataset` (shift helpers for losses in :mod:`specplug.train.shift`);
2. ``specplug train <id>`` (:mod:`specplug.train.commands`), one command per objective a plugin
   registers (hook ``specplug_register_objectives``, :class:`specplug.train.spec.ObjectiveSpec`):
   the generic loop of :mod:`specplug.train.trainer` with a time budget, resumable checkpoints and
   held-out accuracy per draft position, the head exported in vLLM's format (:mod:`specplug.kit.heads`).

Nothing here is imported at specplug's start; torch loads when a command runs.
"""
