"""Level 2: the opt-in ``vllm.general_plugins`` entry point.

Entry point (in specplug's pyproject.toml)::

    [project.entry-points."vllm.general_plugins"]
    specplug = "specplug.integrations.vllm.plugin:register"

vLLM calls :func:`register` in every process it starts (front end, engine core, workers), possibly
more than once. It does nothing unless ``SPECPLUG_VLLM_LEVEL2=1``; then it checks the vLLM version
against the versions these patches were written and tested for and refuses (one log line, no patch)
on any other. Patches are applied at most once per process (see ``patches.py`` for what they do).
"""

from __future__ import annotations

import os

__all__ = ["ENV", "TESTED_VLLM_VERSIONS", "register"]

from specplug.integrations.vllm.level2_state import get_logger

logger = get_logger()

ENV = "SPECPLUG_VLLM_LEVEL2"
TESTED_VLLM_VERSIONS = frozenset({"0.32.0"})
"""vLLM versions whose model runner the patches were read against and tested with."""

_state = {"done": False, "refused": None}


def register() -> bool:
    """Apply the level 2 patches when enabled and the vLLM version is tested. Returns whether active."""
    if os.environ.get(ENV, "").strip() not in {"1", "true", "yes"}:
        return False
    if _state["done"]:
        return True
    if _state["refused"]:
        return False
    import vllm

    version = getattr(vllm, "__version__", "unknown")
    base = version.split("+")[0]
    if base not in TESTED_VLLM_VERSIONS and os.environ.get(f"{ENV}_ANY_VERSION") != "1":
        _state["refused"] = version
        logger.warning(
            "specplug level 2 is not applied: vLLM %s is not among the tested versions (%s). Methods that need "
            "level 2 will refuse to start. Install a tested vLLM, or set %s_ANY_VERSION=1 to try at your own risk.",
            version, ", ".join(sorted(TESTED_VLLM_VERSIONS)), ENV,
        )
        return False
    from specplug.integrations.vllm import level2_state, patches

    provided = patches.apply()
    level2_state.activate(provided)
    _state["done"] = True
    logger.info("specplug level 2 active on vLLM %s: provides %s", version, ", ".join(sorted(provided)))
    return True
