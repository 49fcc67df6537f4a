"""Conformance tests of a method behind vLLM's ``custom_class`` path, ``specplug.vllm.<id>``, without vLLM.

Like vLLM's own custom-class proposer tests, the config is built from ``SimpleNamespace`` and the
adapter is called with the arrays vLLM passes, so these tests need neither vLLM nor a model. A
plugin's ``tests/test_registration.py`` subclasses one of the two classes:

- :class:`VllmAdapterConformance`, for a level 1 method (it needs nothing beyond token ids)::

      class TestPldVllmAdapter(VllmAdapterConformance):
          method = "pld"
          options = {"min_ngram": 1, "max_ngram": 3}
          bad_options = [({"min_ngram": 0}, "min_ngram")]

  ``specplug.vllm.<id>`` resolves to an adapter holding the method's proposer and options; over a
  few decoding steps (a row joining late, a row at the length limit, a finished request's row taken
  by a new one), every row's draft equals the first chain of the proposer's own ``propose`` for
  that history, never exceeds K or the room left, stays in the vocabulary, and some drafts are not
  empty; bad options fail when the engine starts, naming the key and ``--additional-config``.
- :class:`VllmLevel2MethodConformance`, for a method whose needs only level 2 provides: level 1
  refuses it at start, naming the need and the ``SPECPLUG_VLLM_LEVEL2=1`` switch.

Methods whose options need files override the ``method_options`` fixture instead of :attr:`options`.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from specplug.testing.registration import _bad_options_parametrize

__all__ = ["VllmAdapterConformance", "VllmLevel2MethodConformance", "vllm_config"]


def vllm_config(k: int, options: dict[str, Any] | None = None, max_model_len: int = 64, vocab_size: int = 1000):
    """The parts of a ``VllmConfig`` the adapter reads, as plain namespaces."""
    return SimpleNamespace(
        speculative_config=SimpleNamespace(num_speculative_tokens=k),
        model_config=SimpleNamespace(max_model_len=max_model_len, get_vocab_size=lambda: vocab_size),
        additional_config={"specplug": {"options": options}} if options is not None else {},
    )


class _VllmPath:
    #: the method id (``specplug.vllm.<method>``)
    method: ClassVar[str]
    #: options passed through ``additional_config`` (or override the ``method_options`` fixture)
    options: ClassVar[dict[str, Any]] = {}
    #: ``num_speculative_tokens``
    k: ClassVar[int] = 4

    @pytest.fixture
    def method_options(self) -> dict[str, Any]:
        return dict(self.options)

    def adapter_path(self) -> type:
        """The class vLLM gets for ``specplug.vllm.<method>``."""
        return getattr(importlib.import_module("specplug.vllm"), self.method)


class VllmAdapterConformance(_VllmPath):
    """Base class of a level 1 method's vLLM adapter tests; see the module docstring."""

    #: ``max_model_len`` of the config (rows are built to fit, one row sits at the limit)
    max_model_len: ClassVar[int] = 64
    #: the vocabulary the drafts must stay in; prompts use ids in ``[3, vocab_size)``
    vocab_size: ClassVar[int] = 1000
    #: ``(options, text)``: options the adapter must refuse at start, naming the key (``text``)
    bad_options: ClassVar[list[tuple[dict[str, Any], str]]] = []
    steps: ClassVar[int] = 4

    def pytest_generate_tests(self, metafunc):
        _bad_options_parametrize(metafunc)

    def prompts(self) -> list[list[int]]:
        """Three prompts the method should draft from (repetitive ones by default)."""
        from specplug.testing.prompts import repetitive_prompts

        return repetitive_prompts(3, self.vocab_size, seed=7)

    def adapter(self, options):
        return self.adapter_path()(vllm_config(self.k, options, self.max_model_len, self.vocab_size))

    def test_the_vllm_path_resolves_to_an_adapter_of_the_method(self, method_options):
        from specplug.registry import get_registry

        cls = self.adapter_path()
        assert cls.__module__ == "specplug.vllm" and cls.__name__ == self.method
        drafter = self.adapter(method_options)
        drafter.load_model(object())  # vLLM on CPU calls it unconditionally
        spec = get_registry().method(self.method)
        assert drafter.spec is spec and drafter.k == self.k
        assert drafter.options == spec.validate_options(method_options)
        assert type(drafter.proposer) is type(spec.build(method_options))

    def test_drafts_equal_the_first_chain_of_propose_on_reused_rows(self, method_options):
        from specplug.integrations.vllm.adapter import first_chain
        from specplug.protocols import ProposalRequest
        from specplug.registry import get_registry

        drafter = self.adapter(method_options)
        reference = get_registry().method(self.method).build(method_options)
        rng = np.random.default_rng(0)
        histories = [list(p) for p in self.prompts()]
        assert len(histories) == 3 and all(2 <= len(h) <= self.max_model_len // 2 for h in histories)
        phrase = histories[0][:5]
        histories.append((phrase * self.max_model_len)[: self.max_model_len - 1])  # no room left to draft
        rows = len(histories)
        sampled = [[h[-1]] for h in histories]
        started: dict[int, tuple[str, int]] = {}  # row -> (request id, prompt length) of the reference
        drafted = 0
        for step in range(self.steps):
            if step == 2:  # row 0's request finishes and a new request takes the row
                reference.finish_request(started.pop(0)[0])
                histories[0] = list(reversed(histories[2][:8]))
                sampled[0] = [histories[0][-1]]
            # row 1 joins at step 1; the full row is live at step 0 only
            live = [row != 1 or step > 0 for row in range(rows - 1)] + [step == 0]
            tokens = np.zeros((rows, self.max_model_len), dtype=np.int32)  # [rows, max_model_len]
            lengths = np.array([len(h) for h in histories], dtype=np.int32)  # [rows]
            for row, history in enumerate(histories):
                tokens[row, : len(history)] = history
            out = drafter.propose([s if alive else [] for s, alive in zip(sampled, live)], lengths, tokens)
            assert len(out) == rows
            for row, history in enumerate(histories):
                if not live[row]:
                    assert out[row] == [], f"step {step}: row {row} got a draft without sampled tokens"
                    continue
                if row not in started:
                    started[row] = (f"r{row}-{step}", len(history) - len(sampled[row]))
                    reference.start_request(started[row][0], np.asarray(history[: started[row][1]], dtype=np.int64))
                budget = min(self.k, self.max_model_len - len(history) - 1)
                expected: list[int] = []
                if budget > 0:
                    request = ProposalRequest(started[row][0], np.asarray(history, dtype=np.int64), started[row][1], budget)
                    expected = first_chain(reference.propose(request))[:budget].tolist()
                    if any(t < 0 for t in expected):  # padding ends a draft
                        expected = expected[: next(i for i, t in enumerate(expected) if t < 0)]
                assert out[row] == expected, f"step {step}, row {row}: adapter drafted {out[row]}, propose {expected}"
                assert len(out[row]) <= max(budget, 0)
                assert all(0 <= t < self.vocab_size for t in out[row])
                drafted += len(out[row])
            for row in range(rows - 1):  # accept half of each draft, plus a bonus token
                if live[row]:
                    sampled[row] = out[row][: len(out[row]) // 2] + [int(rng.integers(3, self.vocab_size))]
                    histories[row] = histories[row] + sampled[row]
        assert drafted > 0, "the adapter never drafted: the test would pass with an empty proposer"

    def test_bad_options_fail_at_start_naming_the_key_and_the_way_in(self, bad_option):
        from specplug.methods import OptionsError

        options, text = bad_option
        with pytest.raises(OptionsError) as err:
            self.adapter(options)
        assert text in str(err.value) and "additional-config" in str(err.value), str(err.value)


class VllmLevel2MethodConformance(_VllmPath):
    """Base class of the vLLM tests of a method that needs level 2; see the module docstring."""

    def test_level_1_refuses_it_naming_the_need_and_the_level_2_switch(self, method_options):
        from specplug.integrations.vllm.adapter import SpecplugConfigError
        from specplug.registry import get_registry

        needs = get_registry().method(self.method).needs
        assert needs, f"{self.method!r} needs nothing beyond token ids: use VllmAdapterConformance"
        with pytest.raises(SpecplugConfigError) as err:
            self.adapter_path()(vllm_config(self.k, method_options))
        message = str(err.value)
        assert "SPECPLUG_VLLM_LEVEL2=1" in message and f"{self.method!r}" in message
        assert all(str(need) in message for need in needs), message
