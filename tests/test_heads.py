"""The drafting kit's head machinery (specplug.kit.heads): folders that are not heads, unknown head
methods, a target's fingerprint, and random heads of every registered head class saved and loaded
back through the registry."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from specplug.kit.heads import (  # noqa: E402
    METADATA_FILE,
    HeadMetadata,
    HeadMismatchError,
    head_class,
    load_head,
    save_random_head,
    target_fingerprint,
    target_summary,
)
from specplug.registry import get_registry  # noqa: E402
from specplug.testing import tiny_llama  # noqa: E402

V, H = 128, 64


@pytest.fixture(scope="module")
def target():
    return tiny_llama(vocab_size=V, hidden=H, num_layers=3)


def test_not_a_head_folder(target, tmp_path):
    with pytest.raises(HeadMismatchError, match="not a specplug head folder"):
        load_head(tmp_path, target)
    with pytest.raises(HeadMismatchError, match="does not exist"):
        load_head(tmp_path / "missing", target)


def test_unknown_head_method_and_format_are_refused(target, tmp_path):
    HeadMetadata("no-such-head", target_summary(target), [-1], V).save(tmp_path)
    with pytest.raises(HeadMismatchError, match="unknown head method 'no-such-head'"):
        load_head(tmp_path, target)
    raw = json.loads((tmp_path / METADATA_FILE).read_text())
    (tmp_path / METADATA_FILE).write_text(json.dumps({**raw, "format": 99}))
    with pytest.raises(HeadMismatchError, match="head format 99"):
        load_head(tmp_path, target)


def test_fingerprint_ignores_dtype_and_tells_seeds_apart(target):
    same = tiny_llama(vocab_size=V, hidden=H, num_layers=3).to(torch.bfloat16)
    other = tiny_llama(vocab_size=V, hidden=H, num_layers=3, seed=7)
    assert target_fingerprint(target) == target_fingerprint(same) != target_fingerprint(other)


def test_random_heads_of_every_registered_head_class_round_trip(target, tmp_path):
    methods = sorted(i for i, spec in get_registry().objectives.items() if spec.head_class is not None)
    if not methods:
        pytest.skip("no installed plugin registers a head")
    for method in methods:
        state = torch.random.get_rng_state()
        folder = save_random_head(method, target, tmp_path / method, seed=3, draft_vocab=V // 2)
        assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left alone
        head, meta = load_head(folder, target)
        assert isinstance(head, head_class(method)) and meta.method == method
        assert meta.target["fingerprint"] == target_fingerprint(target)
        again = save_random_head(method, target, tmp_path / f"{method}-again", seed=3, draft_vocab=V // 2)
        assert (folder / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes(), method
