"""Level 2 entry point: off by default, refuses untested vLLM versions, patches at most once.

One subprocess runs all three checks in order (importing vllm costs most of the time).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

SCRIPT = """
import os
import vllm
from specplug.integrations.vllm import level2_state, patches, plugin
from specplug.protocols import Need
from vllm.v1.sample.rejection_sampler import RejectionSampler
from vllm.v1.worker.gpu_model_runner import GPUModelRunner

def patched():
    return hasattr(GPUModelRunner._update_states, "__specplug_patched__")

# 1. off unless SPECPLUG_VLLM_LEVEL2=1
assert plugin.register() is False and not level2_state.active() and not patched()
print("check off: ok")

# 2. an untested version: refused, logged, nothing patched
os.environ["SPECPLUG_VLLM_LEVEL2"] = "1"
real = vllm.__version__
vllm.__version__ = "0.99.0"
assert plugin.register() is False and not level2_state.active() and not patched()
print("check refuse: ok")

# 3. the tested version: active; repeated calls are no-ops; wrapping twice is refused
vllm.__version__ = real
plugin._state.update(done=False, refused=None)
assert plugin.register() and plugin.register() and plugin.register()
wrapped = GPUModelRunner._update_states
assert patched() and not hasattr(wrapped.__wrapped__, "__specplug_patched__")
assert {Need.request_lifecycle, Need.target_topk, Need.target_predictions} <= level2_state.provided_needs()
patches.apply()
assert GPUModelRunner._update_states is wrapped
try:
    patches._wrap(RejectionSampler, "forward", lambda original: original)
except RuntimeError as err:
    assert "already patched" in str(err)
    print("check once: ok")
"""


def test_level2_gating_and_idempotence():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECPLUG_VLLM")}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for check in ("off", "refuse", "once"):
        assert f"check {check}: ok" in out
    assert "not among the tested versions" in out and "0.99.0" in out
