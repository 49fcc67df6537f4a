"""A tiny training workspace for tests of the training kit and of plugins' objectives.

:func:`tiny_training_workspace` writes, under ``root``, a tiny random Llama target (vocabulary 128,
3 layers, hidden 64) with SmolLM2's tokenizer files (prompts are token ids; the tokenizer only
supplies EOS), 24 repetitive prompts and the self-distilled training data the reference engine makes
of them (``specplug train data``). A head trained on it with the ``tiny`` budget takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["tiny_training_target", "tiny_training_workspace"]


def tiny_training_target(path: Path, seed: int = 0) -> Path:
    """A tiny random Llama saved at ``path`` with SmolLM2's tokenizer files."""
    from specplug.models import fetch_smollm2
    from specplug.testing.models import tiny_llama

    model = tiny_llama(vocab_size=128, num_layers=3, hidden=64, seed=seed, eos_token_id=2)
    model.save_pretrained(str(path), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (fetch_smollm2() / name).exists():
            shutil.copy(fetch_smollm2() / name, path / name)
    return path


def tiny_training_workspace(root: Path) -> dict[str, Any]:
    """``{"root", "target", "prompts", "data", "cfg"}``: the target folder, the prompts file, the data
    folder ``specplug train data`` wrote, and the :class:`~specplug.train.data.DataConfig` it used."""
    from specplug.testing.prompts import repetitive_prompts
    from specplug.train.data import DataConfig, build_data

    root = Path(root)
    target = tiny_training_target(root / "target")
    prompts = root / "prompts.jsonl"
    rows = [{"id": f"p{i}", "category": f"c{i % 3}", "token_ids": ids}
            for i, ids in enumerate(repetitive_prompts(24, 128, seed=3))]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(model=str(target), out=str(root / "data"), prompts=str(prompts), max_new_tokens=24,
                     engine="reference", shard_size=5, quiet=True)
    build_data(cfg, log=lambda m: None)
    return {"root": root, "target": target, "prompts": prompts, "data": root / "data", "cfg": cfg}
