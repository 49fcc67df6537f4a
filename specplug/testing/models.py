"""Tiny random Llama models, built on the fly in a second or two so tests need no downloads.

- :func:`tiny_llama`: a random ``LlamaForCausalLM`` (float32, eval mode) with a small vocabulary.
- :func:`tiny_model_dir`: a tiny random Llama saved as a HF folder with SmolLM2's tokenizer
  (vocabulary 49152), so vLLM and ``AutoTokenizer`` can load it.
- :func:`limit_torch_threads`: one torch thread, which tiny models run fastest on (the pytest plugin
  calls it at start-up).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["limit_torch_threads", "tiny_llama", "tiny_model_dir"]


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
