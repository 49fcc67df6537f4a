"""The export in vLLM's layout: vLLM 0.32's own ``MLPSpeculator`` class loads every parameter from the
folder ``specplug train mlp_speculator`` writes, and its modules give specplug's logits (vLLM 0.32
refuses to run the method, see ``vllm_layout_check.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from specplug.kit.heads import load_head, save_random_head  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402


@pytest.mark.vllm
def test_vllms_mlp_speculator_class_loads_the_export_and_computes_the_same_logits(tmp_path):
    pytest.importorskip("vllm")
    target = tiny_llama(vocab_size=128, hidden=64, num_layers=2, seed=1)
    folder = save_random_head("mlp_speculator", target, tmp_path / "mlp", num_heads=3)
    head, _ = load_head(folder, target)
    torch.manual_seed(0)
    inputs = {"hidden": torch.randn(5, 64) * 3, "tokens": torch.randint(0, 128, (5, 3))}
    torch.save(inputs, tmp_path / "inputs.pt")
    script = Path(__file__).with_name("vllm_layout_check.py")
    run = subprocess.run([sys.executable, str(script), str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt")
    assert out["loaded"] == out["params"] and not out["unused"], out
    with torch.no_grad():
        ours = head(inputs["hidden"], inputs["tokens"])
    assert torch.allclose(out["logits"], ours, atol=1e-4), (out["logits"] - ours).abs().max()
