"""A test plugin with two methods that exercise the adapter's start-time checks in a real engine.

- ``needs_topk_test``: needs the target's top-k (level 2 only).
- ``capped_test``: drafts at most 2 tokens per step (max_k=2).
- ``lifecycle_test``: records start/finish events into the file named by SPECPLUG_TEST_EVENTS
  (for the level 2 lifecycle test) and drafts nothing.

The vLLM worker (``specplug.integrations.vllm.worker``) registers it when a job lists it under
``extra_plugins`` (the tests put this folder on the job's PYTHONPATH).
"""

from __future__ import annotations

import json
import os

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import BaseProposer, Draft, Need
from specplug.taxonomy import MethodCard


class RepeatLast(BaseProposer):
    """Drafts the last token again (a cheap, deterministic drafter)."""

    def __init__(self, options=None):
        pass

    def propose(self, request):
        return Draft.chain([int(request.token_ids[-1])] * request.max_tokens)


class Recorder(RepeatLast):
    def __init__(self, options=None):
        self.path = os.environ.get("SPECPLUG_TEST_EVENTS")

    def _log(self, *event):
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(event) + "\n")

    def start_request(self, request_id, prompt_ids):
        self._log("start", request_id, len(prompt_ids))

    def finish_request(self, request_id):
        self._log("finish", request_id)

    def propose(self, request):
        self._log("propose", request.request_id)
        return super().propose(request)


def _card(method_id: str) -> MethodCard:
    return MethodCard(
        id=method_id, name=method_id, summary="test method", generation="ngram", refinement="single_pass_linear",
        acceptance="exact_greedy", lossless=True, training="none",
    )


class _Topk(RepeatLast):
    needs = frozenset({Need.target_topk})


class _Lifecycle(Recorder):
    needs = frozenset({Need.request_lifecycle})


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="needs_topk_test", factory=_Topk, card=_card("needs_topk_test"), needs=frozenset({Need.target_topk})))
    register(MethodSpec(id="capped_test", factory=RepeatLast, card=_card("capped_test"), max_k=2))
    register(MethodSpec(id="lifecycle_test", factory=_Lifecycle, card=_card("lifecycle_test"),
                        needs=frozenset({Need.request_lifecycle})))
