"""What the vLLM tests share: one tiny model for the session (so plain baselines are shared too).

Every engine runs in its own process through :func:`specplug.testing.vllm.run_vllm_job`, which shares
one vLLM cache folder and the outputs of plain decoding across the session.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny random Llama with SmolLM2's tokenizer; hidden 128 with 4 heads: head_dim 32, the
    smallest vLLM's CPU attention supports."""
    from specplug.testing.vllm import session_tiny_model_dir

    return session_tiny_model_dir(tmp_path_factory, hidden=128)
